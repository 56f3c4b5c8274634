/**
 * The Power Automate custom connector (microsoft/PowerPlatformConnectors layout): apiDefinition.swagger.json
 * (OpenAPI 2.0, which is all custom connectors accept) and apiProperties.json, converted from the OpenAPI
 * 3.1 document (shared/contract/openapi.ts), itself generated from the zod schemas of the contract. Pure; the
 * files are written by tools/generate-connector.ts (`npm run connector`).
 *
 * The schema conversion accepts only what it can express exactly in OpenAPI 2.0 (single `type`, nullable
 * as `x-nullable`, `const` as a one-value `enum`, `title` as the `x-ms-summary` label) and throws on
 * anything else, so a new construct in the contract fails the generator instead of producing a connector
 * that says something else.
 */

import type { HeaderObject, ParameterObject, ReferenceObject, SchemaObject } from 'openapi3-ts/oas31';
import { REQUEST_HEADERS } from '../shared/contract/headers.js';
import {
  buildOpenApiDocument,
  CONTRACT_VERSION,
  type JsonSchema,
  OPERATION_IDS,
  type OpenApiDocument,
  PATHS,
} from '../shared/contract/openapi.js';
import type { updateEventSchema } from '../shared/contract/update-event.js';
import { isJsonObject } from '../shared/core/referral.js';

/** Replace it in the custom connector's General tab (or generate with `--host`). */
export const DEFAULT_HOST = 'your-function-app.azurewebsites.net';
export const MAX_DEFINITION_BYTES = 1024 * 1024;
export const CONNECTOR_FILES = ['apiDefinition.swagger.json', 'apiProperties.json'] as const;
export type ConnectorFileName = (typeof CONNECTOR_FILES)[number];

type Visibility = 'important' | 'advanced' | 'none';

/**
 * How prominent each field of the event is in the action's card (`x-ms-visibility`; `none` is the
 * default, shown without "Show advanced options"). Typed by the schema: a new field must be placed here.
 */
export const FIELD_VISIBILITY: Record<keyof typeof updateEventSchema.shape, Visibility> = {
  referralId: 'important',
  status: 'important',
  substatus: 'important',
  eventId: 'none',
  dealValue: 'none',
  currency: 'none',
  closingDate: 'none',
  statusReason: 'advanced',
  notes: 'advanced',
  name: 'advanced',
  externalReferenceId: 'advanced',
  occurredAt: 'advanced',
  dryRun: 'advanced',
};

/**
 * Request headers offered by the action. The event id goes in the body's eventId (one way to set it in a
 * flow, not three); the Standard Webhooks signature headers need an HMAC a flow cannot compute.
 */
const CONNECTOR_HEADERS: Record<string, { summary: string; visibility: Visibility }> = {
  [REQUEST_HEADERS.correlationId]: { summary: 'Correlation ID', visibility: 'advanced' },
};

export interface ConnectorOptions {
  /** Host name of the function app, without scheme or path. */
  host?: string;
}

export type SwaggerSchema = JsonSchema;

/** Keywords copied unchanged into an OpenAPI 2.0 Schema Object. */
const SAME_KEYWORDS = new Set([
  'type',
  'format',
  'description',
  'enum',
  'required',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
]);

function fail(path: string, message: string): never {
  throw new Error(`connector: cannot express ${path} in OpenAPI 2.0: ${message}`);
}

/** A JSON Schema 2020-12 (OpenAPI 3.1) schema as an OpenAPI 2.0 Schema Object. */
export function toSwaggerSchema(schema: JsonSchema | SchemaObject | ReferenceObject, path = '#'): SwaggerSchema {
  const { anyOf, type, ...rest } = schema as JsonSchema;
  if (anyOf !== undefined) {
    // Nullable: `anyOf: [X, { type: 'null' }]` is X with x-nullable.
    if (!Array.isArray(anyOf)) fail(path, 'anyOf is not an array');
    const others = anyOf.filter(
      (branch) => !(isJsonObject(branch) && branch.type === 'null' && Object.keys(branch).length === 1),
    );
    if (others.length !== 1 || anyOf.length !== 2 || type !== undefined || !isJsonObject(others[0])) {
      fail(path, 'anyOf other than "X or null"');
    }
    const inner = toSwaggerSchema(others[0], `${path}/anyOf`);
    return { ...inner, ...toSwaggerSchema(rest, path), 'x-nullable': true };
  }
  const out: SwaggerSchema = {};
  if (type !== undefined) {
    if (typeof type === 'string') {
      out.type = type;
    } else if (Array.isArray(type) && type.length === 2 && type.includes('null')) {
      out.type = type.find((t) => t !== 'null');
      out['x-nullable'] = true;
    } else {
      fail(path, `type ${JSON.stringify(type)}`);
    }
  }
  for (const [keyword, value] of Object.entries(rest)) {
    const at = `${path}/${keyword}`;
    if (SAME_KEYWORDS.has(keyword)) out[keyword] = value;
    else if (keyword === 'title') out['x-ms-summary'] = value;
    else if (keyword === 'examples') {
      if (!Array.isArray(value) || value.length === 0) fail(at, 'examples is not a non-empty array');
      out.example = value[0];
    } else if (keyword === 'const') out.enum = [value];
    else if (keyword === '$ref') {
      if (typeof value !== 'string' || !value.startsWith('#/components/schemas/')) fail(at, `$ref ${String(value)}`);
      out.$ref = value.replace('#/components/schemas/', '#/definitions/');
    } else if (keyword === 'properties') {
      if (!isJsonObject(value)) fail(at, 'properties is not an object');
      out.properties = Object.fromEntries(
        Object.entries(value).map(([name, property]) => {
          if (!isJsonObject(property)) fail(`${at}/${name}`, 'not a schema');
          return [name, toSwaggerSchema(property, `${at}/${name}`)];
        }),
      );
    } else if (keyword === 'items') {
      if (!isJsonObject(value)) fail(at, 'items is not a single schema');
      out.items = toSwaggerSchema(value, at);
    } else if (keyword === 'additionalProperties') {
      out.additionalProperties = typeof value === 'boolean' ? value : toSwaggerSchema(value as JsonSchema, at);
    } else if (keyword === 'propertyNames') {
      // Object keys are always strings in OpenAPI 2.0; only `{ type: 'string' }` is accepted.
      if (!isJsonObject(value) || value.type !== 'string' || Object.keys(value).length !== 1) fail(at, 'propertyNames');
    } else fail(at, `keyword ${keyword}`);
  }
  return out;
}

/** Adds `x-ms-visibility` to the event's properties (the labels come from their titles). */
function withVisibility(schema: SwaggerSchema): SwaggerSchema {
  const properties = schema.properties as Record<string, SwaggerSchema>;
  const names = Object.keys(properties);
  const placed = Object.keys(FIELD_VISIBILITY);
  const unplaced = names.filter((name) => !placed.includes(name));
  const unknown = placed.filter((name) => !names.includes(name));
  if (unplaced.length > 0 || unknown.length > 0) {
    throw new Error(
      `connector: FIELD_VISIBILITY does not match the event's fields (${[...unplaced, ...unknown].join(', ')})`,
    );
  }
  const decorated: Record<string, SwaggerSchema> = {};
  for (const name of names) {
    const visibility = FIELD_VISIBILITY[name as keyof typeof FIELD_VISIBILITY];
    decorated[name] = { ...properties[name], ...(visibility === 'none' ? {} : { 'x-ms-visibility': visibility }) };
  }
  return { ...schema, properties: decorated };
}

function resolveComponent<T>(document: OpenApiDocument, ref: string | undefined, kind: 'parameters' | 'headers'): T {
  const prefix = `#/components/${kind}/`;
  const name = ref?.slice(prefix.length) ?? '';
  const found = (document.components[kind] as Record<string, unknown>)[name];
  if (!ref?.startsWith(prefix) || found === undefined) throw new Error(`connector: unresolved ${ref}`);
  return found as T;
}

function swaggerHeader(header: HeaderObject): JsonSchema {
  if (!header.schema || '$ref' in header.schema) throw new Error('connector: a header schema is not inline');
  const { type, format, enum: values } = header.schema;
  return {
    type,
    ...(format === undefined ? {} : { format }),
    ...(values === undefined ? {} : { enum: values }),
    description: header.description,
  };
}

/** The definitions a schema needs, transitively. */
function referencedDefinitions(roots: unknown[], all: Record<string, SwaggerSchema>): string[] {
  const found = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (isJsonObject(value)) {
      for (const [key, member] of Object.entries(value)) {
        if (key === '$ref' && typeof member === 'string') {
          const name = member.replace('#/definitions/', '');
          if (!found.has(name)) {
            found.add(name);
            visit(all[name]);
          }
        } else visit(member);
      }
    }
  };
  roots.forEach(visit);
  return Object.keys(all).filter((name) => found.has(name));
}

function updateReferralOperation(document: OpenApiDocument, definitions: Record<string, SwaggerSchema>) {
  const operation = document.paths[PATHS.updateReferral]?.post;
  if (operation?.operationId !== OPERATION_IDS.updateReferral)
    throw new Error('connector: no UpdateReferral operation');
  const body = operation.requestBody?.content['application/json']?.schema;
  if (!body || typeof body.$ref !== 'string') throw new Error('connector: the request body is not a schema reference');
  const eventSchema = definitions[body.$ref.replace('#/components/schemas/', '')];
  if (!eventSchema) throw new Error(`connector: unresolved ${body.$ref}`);

  const headers = (operation.parameters ?? [])
    .map(({ $ref }) => resolveComponent<ParameterObject>(document, $ref, 'parameters'))
    .filter((parameter) => parameter.in === 'header' && CONNECTOR_HEADERS[parameter.name] !== undefined)
    .map((parameter) => {
      const { summary, visibility } = CONNECTOR_HEADERS[parameter.name] as { summary: string; visibility: Visibility };
      if (!parameter.schema) throw new Error(`connector: parameter ${parameter.name} has no schema`);
      const schema = toSwaggerSchema(parameter.schema, `parameter ${parameter.name}`);
      return {
        name: parameter.name,
        in: 'header',
        required: parameter.required ?? false,
        ...schema,
        description: parameter.description,
        'x-ms-summary': summary,
        ...(visibility === 'none' ? {} : { 'x-ms-visibility': visibility }),
      };
    });
  if (headers.length !== Object.keys(CONNECTOR_HEADERS).length)
    throw new Error('connector: a connector header is missing');

  const responses: Record<string, JsonSchema> = {};
  for (const [status, response] of Object.entries(operation.responses)) {
    const media = Object.values(response.content ?? {})[0];
    // The error answers narrow Problem to their codes with allOf; the connector keeps the Problem reference
    // and lists the codes in the description.
    const schema = media?.schema;
    const ref = schema && 'allOf' in schema && Array.isArray(schema.allOf) ? schema.allOf[0] : schema;
    responses[status] = {
      description: response.description,
      ...(ref ? { schema: toSwaggerSchema(ref, `response ${status}`) } : {}),
      headers: Object.fromEntries(
        Object.entries(response.headers ?? {}).map(([name, { $ref }]) => [
          name,
          swaggerHeader(resolveComponent<HeaderObject>(document, $ref, 'headers')),
        ]),
      ),
    };
  }

  return {
    operation: {
      operationId: operation.operationId,
      summary: operation.summary,
      description: operation.description,
      'x-ms-visibility': 'important',
      parameters: [
        {
          name: 'body',
          in: 'body',
          required: true,
          description: operation.requestBody?.description,
          'x-ms-summary': 'Update event',
          schema: withVisibility(eventSchema),
        },
        ...headers,
      ],
      responses,
    },
    responseRoots: Object.values(responses),
  };
}

export interface Connector {
  apiDefinition: JsonSchema;
  apiProperties: JsonSchema;
}

export function buildConnector(options: ConnectorOptions = {}, document = buildOpenApiDocument()): Connector {
  const host = options.host ?? DEFAULT_HOST;
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/.test(host)) {
    throw new Error(`connector: host must be a host name such as ${DEFAULT_HOST} (no scheme or path), got ${host}`);
  }
  const definitions = Object.fromEntries(
    Object.entries(document.components.schemas).map(([name, schema]) => [name, toSwaggerSchema(schema, name)]),
  );
  const { operation, responseRoots } = updateReferralOperation(document, definitions);
  const used = referencedDefinitions(responseRoots, definitions);
  const functionKey = document.components.securitySchemes.functionKey;
  if (functionKey?.in !== 'header') throw new Error('connector: no function key header scheme');

  const apiDefinition = {
    swagger: '2.0',
    info: {
      title: 'Partner Center Referral Updates',
      description:
        'Updates Microsoft Partner Center referrals through your Partner Center referral webhook function app: status, substatus, deal value, currency, closing date and notes, with transition rules, safe retries and idempotent redelivery.',
      version: CONTRACT_VERSION,
    },
    host,
    basePath: '/api',
    schemes: ['https'],
    consumes: ['application/json'],
    produces: ['application/json', 'application/problem+json'],
    paths: { [PATHS.updateReferral]: { post: operation } },
    definitions: Object.fromEntries(used.map((name) => [name, definitions[name]])),
    parameters: {},
    responses: {},
    securityDefinitions: {
      api_key: { type: 'apiKey', in: 'header', name: functionKey.name },
    },
    security: [{ api_key: [] }],
    tags: [],
    'x-ms-connector-metadata': [{ propertyName: 'Categories', propertyValue: 'Sales and CRM' }],
  };

  const apiProperties = {
    properties: {
      connectionParameters: {
        api_key: {
          type: 'securestring',
          uiDefinition: {
            displayName: 'Function key',
            description:
              'A function key of the referral-updates function (Function App > Functions > referral-updates > Function Keys), or a host key.',
            tooltip: `Sent as the ${functionKey.name} header.`,
            constraints: { tabIndex: 2, clearText: false, required: 'true' },
          },
        },
      },
      iconBrandColor: '#0078d4',
      capabilities: [],
      publisher: 'Partner Center referral webhook',
      stackOwner: 'Partner Center referral webhook',
    },
  };
  return { apiDefinition, apiProperties };
}

/**
 * JSON as Biome formats it (biome.json: 2 spaces, 120 columns): objects expanded, arrays of scalars on
 * one line when they fit, one element per line otherwise; a trailing newline. So the generated files
 * pass `biome check` unchanged and regenerate byte for byte.
 */
export function formatJson(value: unknown, lineWidth = 120): string {
  const render = (node: unknown, indent: string, lead: number, trail: number): string => {
    if (Array.isArray(node)) {
      if (node.length === 0) return '[]';
      const inner = `${indent}  `;
      if (node.every((element) => typeof element !== 'object' || element === null)) {
        const flat = `[${node.map((element) => JSON.stringify(element)).join(', ')}]`;
        if (lead + flat.length + trail <= lineWidth) return flat;
      }
      const lines = node.map(
        (element, i) => `${inner}${render(element, inner, inner.length, i < node.length - 1 ? 1 : 0)}`,
      );
      return `[\n${lines.join(',\n')}\n${indent}]`;
    }
    if (typeof node === 'object' && node !== null) {
      const entries = Object.entries(node).filter(([, member]) => member !== undefined);
      if (entries.length === 0) return '{}';
      const inner = `${indent}  `;
      const lines = entries.map(([key, member], i) => {
        const prefix = `${inner}${JSON.stringify(key)}: `;
        return `${prefix}${render(member, inner, prefix.length, i < entries.length - 1 ? 1 : 0)}`;
      });
      return `{\n${lines.join(',\n')}\n${indent}}`;
    }
    const scalar = JSON.stringify(node);
    if (scalar === undefined) throw new Error(`formatJson: ${typeof node} is not JSON`);
    return scalar;
  };
  return `${render(value, '', 0, 0)}\n`;
}

/** The connector files, as written to connector/. */
export function connectorFiles(options: ConnectorOptions = {}): Record<ConnectorFileName, string> {
  const { apiDefinition, apiProperties } = buildConnector(options);
  return {
    'apiDefinition.swagger.json': formatJson(apiDefinition),
    'apiProperties.json': formatJson(apiProperties),
  };
}
