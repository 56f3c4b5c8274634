/**
 * The Power Automate custom connector: valid OpenAPI 2.0 (a real validator, plus the rules the validator's
 * draft-04 schema lets through), what Power Automate needs (labels, dropdowns, the function key, the error
 * answers, < 1 MB), derived from the same contract as the OpenAPI 3.1 document, and committed as generated.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument, type JsonSchema, updateErrorCodes } from '../../shared/contract/openapi.js';
import { updateEventSchema } from '../../shared/contract/update-event.js';
import { ERROR_DEFINITIONS } from '../../shared/core/errors.js';
import { STATUSES, SUBSTATUSES } from '../../shared/core/referral.js';
import {
  buildConnector,
  CONNECTION_KEY_NAME,
  CONNECTOR_FILES,
  connectorFiles,
  DEFAULT_HOST,
  FIELD_VISIBILITY,
  formatJson,
  MAX_DEFINITION_BYTES,
  QUEUED_ACTION,
  toSwaggerSchema,
} from '../../tools/connector.js';
import { REPO_ROOT } from '../support/stack.js';

const files = connectorFiles();
const apiDefinition = JSON.parse(files['apiDefinition.swagger.json']);
const apiProperties = JSON.parse(files['apiProperties.json']);
const operation = apiDefinition.paths['/referral-updates'].post;
const queued = apiDefinition.paths['/referral-updates?async=true'].post;
const body = operation.parameters.find((p: { in: string }) => p.in === 'body').schema as JsonSchema & {
  properties: Record<string, JsonSchema>;
};

/** Every Schema Object of the definition (definitions, parameters, responses), with where it is. */
function schemasOf(definition: {
  definitions: Record<string, JsonSchema>;
  paths: Record<
    string,
    Record<string, { parameters: JsonSchema[]; responses: Record<string, { schema?: JsonSchema }> }>
  >;
}): Array<[string, JsonSchema]> {
  const found: Array<[string, JsonSchema]> = [];
  const visit = (schema: JsonSchema, at: string): void => {
    found.push([at, schema]);
    for (const [name, property] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>)) {
      visit(property, `${at}/properties/${name}`);
    }
    if (schema.items) visit(schema.items as JsonSchema, `${at}/items`);
    if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      visit(schema.additionalProperties as JsonSchema, `${at}/additionalProperties`);
    }
  };
  for (const [name, schema] of Object.entries(definition.definitions)) visit(schema, `definitions/${name}`);
  for (const [path, methods] of Object.entries(definition.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      for (const parameter of op.parameters) {
        if (parameter.schema) visit(parameter.schema as JsonSchema, `${path} ${method} ${String(parameter.name)}`);
        else visit(parameter, `${path} ${method} ${String(parameter.name)}`);
      }
      for (const [status, response] of Object.entries(op.responses)) {
        if (response.schema) visit(response.schema, `${path} ${method} ${status}`);
      }
    }
  }
  return found;
}

describe('OpenAPI 2.0', () => {
  it('validates with @seriousme/openapi-schema-validator as Swagger 2.0', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(apiDefinition));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('2.0');
  });

  it('the validator is not vacuous: it rejects oneOf and an OpenAPI 3 parameter', async () => {
    const withOneOf = structuredClone(apiDefinition);
    withOneOf.definitions.Change.properties.from = { oneOf: [{ type: 'string' }, { type: 'number' }] };
    expect((await new Validator().validate(withOneOf)).valid).toBe(false);
    const v3Parameter = structuredClone(apiDefinition);
    v3Parameter.paths['/referral-updates'].post.parameters[1].schema = { type: 'string' };
    expect((await new Validator().validate(v3Parameter)).valid).toBe(false);
  });

  it('uses only what OpenAPI 2.0 has: one type per schema, no null, no const, no 3.x or 2020-12 keywords', () => {
    const types = new Set(['string', 'number', 'integer', 'boolean', 'array', 'object', 'file']);
    const schemas = schemasOf(apiDefinition);
    expect(schemas.length).toBeGreaterThan(40);
    for (const [at, schema] of schemas) {
      for (const keyword of [
        'anyOf',
        'oneOf',
        'not',
        'const',
        'nullable',
        '$schema',
        '$defs',
        '$id',
        'examples',
        'propertyNames',
        'title',
      ]) {
        expect(Object.keys(schema), `${at} has ${keyword}`).not.toContain(keyword);
      }
      if ('type' in schema)
        expect(types.has(schema.type as string), `${at} type ${JSON.stringify(schema.type)}`).toBe(true);
      if (typeof schema.$ref === 'string') {
        expect(schema.$ref).toMatch(/^#\/definitions\//);
        expect(apiDefinition.definitions[schema.$ref.slice('#/definitions/'.length)], schema.$ref).toBeDefined();
      }
      if ('enum' in schema) expect((schema.enum as unknown[]).includes(null), `${at} enum has null`).toBe(false);
    }
  });

  it('the converter refuses what it cannot express, instead of writing something else', () => {
    expect(() => toSwaggerSchema({ anyOf: [{ type: 'string' }, { type: 'number' }] })).toThrow(/anyOf/);
    expect(() => toSwaggerSchema({ type: ['string', 'number'] })).toThrow(/type/);
    expect(() => toSwaggerSchema({ oneOf: [{ type: 'string' }] })).toThrow(/oneOf/);
    expect(() => toSwaggerSchema({ $ref: '#/$defs/x' })).toThrow(/\$ref/);
    expect(toSwaggerSchema({ anyOf: [{ type: 'string' }, { type: 'null' }], title: 'T', description: 'd' })).toEqual({
      type: 'string',
      'x-ms-summary': 'T',
      description: 'd',
      'x-nullable': true,
    });
    expect(toSwaggerSchema({ const: 400, examples: [400, 401] })).toEqual({ enum: [400], example: 400 });
  });

  it('is smaller than 1 MB', () => {
    for (const name of CONNECTOR_FILES) {
      expect(Buffer.byteLength(files[name]), name).toBeLessThan(MAX_DEFINITION_BYTES);
    }
  });
});

describe('what Power Automate shows', () => {
  it('two actions, UpdateReferral and QueueReferralUpdate, on https://<host>/api/referral-updates, and the internal stage list, behind the function key header', () => {
    expect(apiDefinition).toMatchObject({
      swagger: '2.0',
      host: DEFAULT_HOST,
      basePath: '/api',
      schemes: ['https'],
      securityDefinitions: { api_key: { type: 'apiKey', in: 'header', name: 'x-functions-key' } },
      security: [{ api_key: [] }],
    });
    expect(Object.keys(apiDefinition.paths)).toEqual(['/referral-updates', '/referral-updates?async=true', '/stages']);
    expect(apiDefinition.paths['/stages'].get).toMatchObject({
      operationId: 'ListStages',
      'x-ms-visibility': 'internal',
    });
    expect(Object.keys(apiDefinition.paths['/referral-updates'])).toEqual(['post']);
    expect(Object.keys(apiDefinition.paths['/referral-updates?async=true'])).toEqual(['post']);
    expect(queued).toMatchObject({
      operationId: 'QueueReferralUpdate',
      summary: 'Queue a referral update',
      'x-ms-visibility': 'important',
    });
    expect(operation).toMatchObject({
      operationId: 'UpdateReferral',
      summary: 'Update a referral',
      'x-ms-visibility': 'important',
    });
    expect(String(operation.description).length).toBeGreaterThan(50);
  });

  it('the connection asks for the power-automate host key as a secure string (apiProperties.json)', () => {
    expect(apiProperties.properties.connectionParameters).toEqual({
      api_key: {
        type: 'securestring',
        uiDefinition: expect.objectContaining({
          displayName: 'Host Key',
          description: expect.stringContaining(`host key named ${CONNECTION_KEY_NAME}`),
          constraints: expect.objectContaining({ required: 'true', clearText: false }),
        }),
      },
    });
    expect(apiProperties.properties).toMatchObject({
      iconBrandColor: expect.stringMatching(/^#[0-9a-f]{6}$/),
      capabilities: [],
      publisher: expect.any(String),
      stackOwner: expect.any(String),
    });
  });

  it('the action card is the event: every field, labelled and described, status and substatus as dropdowns', () => {
    expect(Object.keys(body.properties)).toEqual(Object.keys(updateEventSchema.shape));
    expect(body.required).toEqual(['referralId']);
    for (const [name, property] of Object.entries(body.properties)) {
      expect(property['x-ms-summary'], name).toEqual(expect.any(String));
      expect(String(property.description).length, name).toBeGreaterThan(20);
      const visibility = FIELD_VISIBILITY[name as keyof typeof FIELD_VISIBILITY];
      expect(property['x-ms-visibility'], name).toBe(visibility === 'none' ? undefined : visibility);
    }
    expect(body.properties.status).toMatchObject({
      type: 'string',
      enum: [...STATUSES],
      'x-ms-visibility': 'important',
    });
    expect(body.properties.substatus).toMatchObject({
      type: 'string',
      enum: [...SUBSTATUSES],
      'x-ms-visibility': 'important',
    });
    expect(body.properties.referralId).toMatchObject({ 'x-ms-summary': 'Referral ID', 'x-ms-visibility': 'important' });
    expect(body.properties.dryRun).toMatchObject({ type: 'boolean' });
  });

  it('is converted from the OpenAPI 3.1 document: same fields, limits and descriptions', () => {
    const event = buildOpenApiDocument().components.schemas.UpdateEvent as { properties: Record<string, JsonSchema> };
    for (const [name, nullable] of Object.entries(event.properties)) {
      const converted = body.properties[name] as JsonSchema;
      // "X or null" (null is "not given") is X with x-nullable.
      const { anyOf, type, ...rest } = nullable;
      const branch = Array.isArray(anyOf) ? (anyOf[0] as JsonSchema) : {};
      const property: JsonSchema = {
        ...rest,
        ...branch,
        ...(Array.isArray(type) ? { type: type[0] } : type ? { type } : {}),
      };
      expect(converted['x-nullable'], name).toBe(name === 'referralId' ? undefined : true);
      for (const keyword of ['type', 'enum', 'description', 'maxLength', 'minLength', 'pattern', 'format', 'minimum']) {
        expect(converted[keyword], `${name}.${keyword}`).toEqual(property[keyword]);
      }
      expect(converted['x-ms-summary']).toBe(property.title);
    }
  });

  it('documents the 200 result and every error status of the POST, with its codes', () => {
    const codes = updateErrorCodes();
    const statuses = [...new Set(codes.map((code) => ERROR_DEFINITIONS[code].status))].map(String);
    expect(Object.keys(operation.responses).sort()).toEqual(['200', ...statuses].sort());
    expect(operation.responses['200'].schema).toEqual({ $ref: '#/definitions/UpdateResult' });
    for (const code of codes) {
      const response = operation.responses[String(ERROR_DEFINITIONS[code].status)];
      expect(response.schema).toEqual({ $ref: '#/definitions/Problem' });
      expect(response.description).toContain(`\`${code}\``);
    }
    expect(apiDefinition.definitions.Problem.properties.code.enum).toEqual(Object.keys(ERROR_DEFINITIONS));
    expect(Object.keys(apiDefinition.definitions).sort()).toEqual([
      'Accepted',
      'Change',
      'DeliveryError',
      'FieldError',
      'Problem',
      'Stage',
      'StageList',
      'SupersededField',
      'UpdateResult',
    ]);
    expect(operation.responses['503'].headers['Retry-After']).toMatchObject({ type: 'integer' });
    expect(operation.responses['200'].headers['MS-CorrelationId']).toMatchObject({ type: 'string' });
  });

  it('the synchronous action is contract v1: no Prefer, no 202, no word of the queue', () => {
    expect(operation.parameters.map((p: { name: string }) => p.name)).toEqual(['body', 'MS-CorrelationId']);
    expect(operation.responses['202']).toBeUndefined();
    expect(operation.responses['424']).toBeUndefined();
    expect(operation.description).not.toMatch(/asynchronous|respond-async|202/i);
  });

  it('the queued action: the same event, Prefer: respond-async (internal, required, by default), the 202 with its Location, and the final 200 as its outputs', () => {
    expect(queued.operationId).toBe(QUEUED_ACTION.operationId);
    expect(queued.parameters[0]).toEqual(operation.parameters[0]);
    expect(queued.parameters.slice(1)).toEqual([
      operation.parameters[1],
      expect.objectContaining({
        name: 'Prefer',
        in: 'header',
        required: true,
        type: 'string',
        default: 'respond-async',
        'x-ms-visibility': 'internal',
        'x-ms-summary': 'Prefer',
      }),
    ]);
    expect(queued.responses['202']).toMatchObject({
      schema: { $ref: '#/definitions/Accepted' },
      headers: {
        Location: { type: 'string', 'x-ms-summary': 'Location' },
        'Retry-After': { type: 'integer' },
        'MS-CorrelationId': { type: 'string' },
        'Preference-Applied': { enum: ['respond-async'] },
      },
    });
    expect(queued.responses['200'].schema).toEqual({ $ref: '#/definitions/UpdateResult' });
    expect(queued.responses['424']).toMatchObject({ schema: { $ref: '#/definitions/Problem' } });
    expect(queued.responses['424'].description).toContain('`dead_lettered`');
    const { '202': _accepted, '424': _deadLettered, ...rest } = queued.responses;
    expect(Object.keys(rest)).toEqual(Object.keys(operation.responses));
    expect(apiDefinition.definitions.Accepted.required).toEqual(['referralId', 'eventId', 'state', 'statusUrl']);
    expect(String(queued.description)).toMatch(/202/);
  });

  it('the answer fields that can be null say so (x-nullable), so flows can read a stale answer', () => {
    const result = apiDefinition.definitions.UpdateResult.properties;
    for (const name of ['status', 'substatus', 'eTag', 'wouldPut']) expect(result[name]['x-nullable'], name).toBe(true);
    expect(result.outcome['x-nullable']).toBeUndefined();
  });
});

describe('the committed files', () => {
  it('equal what `npm run connector` generates, byte for byte (run it after changing the contract)', () => {
    for (const name of CONNECTOR_FILES) {
      expect(readFileSync(join(REPO_ROOT, 'connector', name), 'utf8'), `connector/${name}: run npm run connector`).toBe(
        files[name],
      );
    }
  });

  it('are formatted the way Biome formats them, so `npm run lint` leaves them alone', () => {
    const biome = join(REPO_ROOT, 'node_modules/.bin/biome');
    for (const name of CONNECTOR_FILES) {
      const formatted = execFileSync(biome, ['format', `--stdin-file-path=connector/${name}`], {
        cwd: REPO_ROOT,
        input: files[name],
        encoding: 'utf8',
      });
      expect(formatted, name).toBe(files[name]);
    }
    const sample = { a: ['x', 'y'], b: { c: [], d: {} }, e: [{ f: 1 }], g: ['z'.repeat(70), 'z'.repeat(70)] };
    const text = formatJson(sample);
    expect(
      execFileSync(biome, ['format', '--stdin-file-path=x.json'], { cwd: REPO_ROOT, input: text, encoding: 'utf8' }),
    ).toBe(text);
  });

  it('--host changes the host and the URLs on it (website, contact) and nothing else; a scheme or path is refused', () => {
    const custom = buildConnector({ host: 'contoso-referrals.azurewebsites.net' }).apiDefinition;
    expect(JSON.parse(JSON.stringify(custom).replaceAll('contoso-referrals.azurewebsites.net', DEFAULT_HOST))).toEqual(
      apiDefinition,
    );
    expect(custom.host).toBe('contoso-referrals.azurewebsites.net');
    expect(() => buildConnector({ host: 'https://contoso.azurewebsites.net/api' })).toThrow(/host name/);
  });
});
