/**
 * The OpenAPI 3.1 document against its sources: a real OpenAPI validator, the zod contract field by
 * field, the error catalogue, and its own examples (each one parsed by the contract and validated by the
 * document's JSON Schemas with Ajv).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import type { ExampleObject, ReferenceObject } from 'openapi3-ts/oas31';
import { describe, expect, it } from 'vitest';
import {
  acceptedSchema,
  deliveryListSchema,
  deliverySummarySchema,
  pendingStatusSchema,
} from '../../shared/contract/async.js';
import {
  ACCEPTED_EXAMPLE,
  ASYNC_OPERATION_CODES,
  buildOpenApiDocument,
  CONTRACT_VERSION,
  DELIVERY_EXAMPLE,
  type JsonSchema,
  openApiDocument,
  openApiJson,
  PENDING_STATUS_EXAMPLE,
  PROBLEM_EXAMPLES,
  UPDATE_EVENT_EXAMPLES,
  UPDATE_RESULT_EXAMPLE,
  updateErrorCodes,
} from '../../shared/contract/openapi.js';
import { ERROR_CODES, problemSchema, updateResultSchema } from '../../shared/contract/responses.js';
import { CHANGE_FIELDS, LIMITS, parseUpdateEvent, updateEventSchema } from '../../shared/contract/update-event.js';
import { ERROR_DEFINITIONS } from '../../shared/core/errors.js';
import { STATUSES, SUBSTATUSES } from '../../shared/core/referral.js';
import { presetStageMap } from '../../shared/core/stages.js';
import { openApi31Check, pointer } from '../support/documents.js';

const document = buildOpenApiDocument();
const eventJsonSchema = document.components.schemas.UpdateEvent as JsonSchema & {
  properties: Record<string, JsonSchema>;
  required: string[];
};
const updateReferral = document.paths['/referral-updates']?.post;

const check = openApi31Check(document);
/** An example's value (the document writes every example inline). */
const exampleValue = (example: ExampleObject | ReferenceObject | undefined) =>
  example && 'value' in example ? example.value : undefined;
const EVENT = '/components/schemas/UpdateEvent';

describe('the OpenAPI 3.1 document', () => {
  it('is valid OpenAPI 3.1 according to @seriousme/openapi-schema-validator', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document) as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('the validator is not vacuous: it rejects what OpenAPI 3.1 forbids', async () => {
    const bodyParameter = structuredClone(document) as unknown as {
      paths: Record<string, Record<string, { parameters: unknown[] }>>;
    };
    bodyParameter.paths['/referral-updates']?.post?.parameters.push({ name: 'event', in: 'body', schema: {} });
    expect((await new Validator().validate(bodyParameter)).valid).toBe(false);
    const noTitle = structuredClone(document) as unknown as { info: { title?: string } };
    delete noTitle.info.title;
    expect((await new Validator().validate(noTitle)).valid).toBe(false);
  });

  it('is built once per process: the served document is cached, read-only, and equal to a fresh build', () => {
    expect(openApiDocument()).toBe(openApiDocument());
    expect(Object.isFrozen(openApiDocument().components.schemas.UpdateEvent)).toBe(true);
    expect(openApiDocument()).toEqual(buildOpenApiDocument());
    expect(JSON.parse(openApiJson())).toEqual(document);
  });

  it('every $ref resolves', () => {
    const refs: string[] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === 'object') {
        for (const [key, member] of Object.entries(value)) {
          if (key === '$ref' && typeof member === 'string') refs.push(member);
          else walk(member);
        }
      }
    };
    walk(document);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      expect(ref).toMatch(/^#\//);
      const target = ref
        .slice(2)
        .split('/')
        .reduce<unknown>((node, segment) => (node as Record<string, unknown> | undefined)?.[segment], document);
      expect(target, ref).toBeDefined();
    }
  });
});

describe('the request body is the zod contract, field by field', () => {
  const shape = updateEventSchema.shape;

  it('describes every field of updateEventSchema and nothing else, and rejects unknown fields', () => {
    expect(Object.keys(eventJsonSchema.properties)).toEqual(Object.keys(shape));
    expect(eventJsonSchema.additionalProperties).toBe(false);
    expect(updateReferral?.requestBody?.content['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/UpdateEvent',
    });
  });

  it('requires exactly the fields zod requires', () => {
    const required = Object.entries(shape)
      .filter(([, field]) => !field.safeParse(undefined).success)
      .map(([name]) => name);
    expect(eventJsonSchema.required).toEqual(required);
    expect(required).toEqual(['referralId']);
  });

  it('gives every field a label and a description', () => {
    for (const [name, property] of Object.entries(eventJsonSchema.properties)) {
      expect(property.title, name).toEqual(expect.any(String));
      expect(String(property.description).length, name).toBeGreaterThan(20);
    }
    expect(eventJsonSchema.description).toContain(CHANGE_FIELDS.join(', '));
  });

  it('takes the enums from the referral model and the lengths from LIMITS; every optional field also takes null (not given)', () => {
    const properties = Object.fromEntries(
      Object.entries(eventJsonSchema.properties).map(([name, property]) => {
        if (name === 'referralId') return [name, property];
        // null is "not given" (a blank CRM column): each optional field is "X or null".
        if (Array.isArray(property.type)) {
          expect(property.type, name).toEqual([expect.any(String), 'null']);
          return [name, { ...property, type: property.type[0] }];
        }
        const branches = property.anyOf as Array<Record<string, unknown>>;
        expect(branches, name).toHaveLength(2);
        expect(branches[1], name).toEqual({ type: 'null' });
        return [name, { ...property, ...branches[0] }];
      }),
    );
    expect(properties.status?.enum).toEqual([...STATUSES]);
    expect(properties.substatus?.enum).toEqual([...SUBSTATUSES]);
    for (const [name, max] of Object.entries(LIMITS)) expect(properties[name]?.maxLength, name).toBe(max);
    expect(properties.dealValue).toMatchObject({ type: 'number', minimum: 0 });
    expect(properties.dryRun).toMatchObject({ type: 'boolean' });
    expect(properties.occurredAt).toMatchObject({ type: 'string', format: 'date-time' });
  });

  it('each example of a field is accepted by that field in zod and by the document', () => {
    for (const [name, property] of Object.entries(eventJsonSchema.properties)) {
      const examples = property.examples as unknown[];
      expect(examples?.length, `${name} has examples`).toBeGreaterThan(0);
      for (const example of examples) {
        expect(shape[name as keyof typeof shape].safeParse(example).success, `${name}: ${String(example)}`).toBe(true);
        expect(check(EVENT, { referralId: 'r-1', [name]: example }), name).toEqual([]);
      }
    }
  });

  it('agrees with zod on valid and invalid events (the document is never stricter than the contract, except for casing)', () => {
    const probes: Array<[unknown, boolean]> = [
      [{ referralId: 'r-1', substatus: 'Won' }, true],
      [
        {
          referralId: 'r-1',
          status: 'Active',
          dealValue: 0,
          currency: 'USD',
          closingDate: '2026-12-31T10:00:00+02:00',
        },
        true,
      ],
      [{ referralId: 'r-1', occurredAt: '2026-11-25T09:30:00.123Z', dryRun: false, notes: '' }, true],
      [{ referralId: 'r-1', substaus: 'Won' }, false],
      [{ referralId: 'r 1', status: 'Active' }, false],
      [{ referralId: '', status: 'Active' }, false],
      [{ referralId: 'r'.repeat(LIMITS.referralId + 1), status: 'Active' }, false],
      [{ referralId: 'r-1', dealValue: -1 }, false],
      [{ referralId: 'r-1', dealValue: '10' }, false],
      [{ referralId: 'r-1', status: 'Open' }, false],
      [{ referralId: 'r-1', name: '' }, false],
      [{ referralId: 'r-1', notes: 'n'.repeat(LIMITS.notes + 1) }, false],
      [{ referralId: 'r-1', occurredAt: '2026-11-25T09:30:00' }, false],
      [{ referralId: 'r-1', dryRun: 'yes' }, false],
      [{ status: 'Active' }, false],
    ];
    for (const [event, valid] of probes) {
      expect(updateEventSchema.safeParse(event).success, JSON.stringify(event)).toBe(valid);
      expect(check(EVENT, event).length === 0, JSON.stringify(event)).toBe(valid);
    }
    // Documented: the contract also takes any casing; the document lists the canonical values (dropdowns).
    expect(updateEventSchema.safeParse({ referralId: 'r-1', substatus: 'won' }).success).toBe(true);
  });

  it('the request examples are valid events', () => {
    const examples = updateReferral?.requestBody?.content['application/json']?.examples ?? {};
    expect(Object.keys(examples)).toEqual(Object.keys(UPDATE_EVENT_EXAMPLES));
    for (const [name, example] of Object.entries(examples)) {
      const value = exampleValue(example);
      expect(() => parseUpdateEvent(value, { stageMap: presetStageMap('salesforce') }), name).not.toThrow();
      expect(check(EVENT, value), name).toEqual([]);
    }
  });
});

describe('the answers', () => {
  const responses = updateReferral?.responses ?? {};

  it('documents one error response per status of the catalogue, each listing exactly its codes (but those of the operations on events)', () => {
    const postCodes = Object.keys(ERROR_DEFINITIONS).filter(
      (code) => !(ASYNC_OPERATION_CODES as readonly string[]).includes(code),
    );
    expect(updateErrorCodes()).toEqual(postCodes);
    expect(postCodes).toEqual(expect.arrayContaining(['delivery_unavailable', 'async_unavailable']));
    const statuses = [
      ...new Set(postCodes.map((code) => ERROR_DEFINITIONS[code as keyof typeof ERROR_DEFINITIONS].status)),
    ];
    expect(Object.keys(responses).sort()).toEqual(['200', '202', ...statuses.map(String)].sort());
    const documented: string[] = [];
    for (const [status, response] of Object.entries(responses)) {
      if (status === '200' || status === '202') continue;
      const codes = narrowedCodes(response, Number(status));
      expect(codes).toEqual(
        postCodes.filter((code) => ERROR_DEFINITIONS[code as keyof typeof ERROR_DEFINITIONS].status === Number(status)),
      );
      for (const code of codes) expect(response.description).toContain(`\`${code}\``);
      documented.push(...codes);
    }
    expect(documented.sort()).toEqual([...postCodes].sort());
    const problem = document.components.schemas.Problem as { properties: { code: { enum: string[] } } };
    expect(problem.properties.code.enum).toEqual(ERROR_CODES);
  });

  it('documents Retry-After on 409 and 503 (and on the 202, for polling), Idempotent-Replayed on the answers that are stored for replay', () => {
    const headersOf = (status: string) => Object.keys(responses[status]?.headers ?? {});
    for (const status of Object.keys(responses)) expect(headersOf(status)).toContain('MS-CorrelationId');
    expect(Object.keys(responses).filter((s) => headersOf(s).includes('Retry-After'))).toEqual(['202', '409', '503']);
    expect(responses['202']?.headers?.['Retry-After']).toEqual({ $ref: '#/components/headers/PollRetryAfter' });
    expect(Object.keys(responses).filter((s) => headersOf(s).includes('Idempotent-Replayed'))).toEqual([
      '200',
      '404',
      '422',
    ]);
  });

  it('the answer examples are valid for the contract and for the document', () => {
    expect(updateResultSchema.safeParse(UPDATE_RESULT_EXAMPLE).error?.issues ?? []).toEqual([]);
    const ok = responses['200']?.content?.['application/json'];
    expect(exampleValue(ok?.examples?.updated)).toEqual(UPDATE_RESULT_EXAMPLE);
    expect(
      check(
        pointer('paths', '/referral-updates', 'post', 'responses', '200', 'content', 'application/json', 'schema'),
        UPDATE_RESULT_EXAMPLE,
      ),
    ).toEqual([]);
    for (const [code, example] of Object.entries(PROBLEM_EXAMPLES)) {
      expect(problemSchema.safeParse(example).error?.issues ?? [], code).toEqual([]);
      const status = String(example.status);
      const at = pointer(
        'paths',
        '/referral-updates',
        'post',
        'responses',
        status,
        'content',
        'application/problem+json',
      );
      expect(check(`${at}/schema`, example), code).toEqual([]);
      expect(exampleValue(responses[status]?.content?.['application/problem+json']?.examples?.[code])).toEqual(example);
    }
  });

  it('the narrowed error schemas reject a code documented under another status', () => {
    const at = pointer(
      'paths',
      '/referral-updates',
      'post',
      'responses',
      '422',
      'content',
      'application/problem+json',
      'schema',
    );
    const wrong = { ...PROBLEM_EXAMPLES.transition_not_allowed, code: 'conflict', status: 422 };
    expect(check(at, wrong).length).toBeGreaterThan(0);
  });

  it('function key on the update and the operations on events, anonymous status URL, health and document', () => {
    for (const [path, method] of [
      ['/referral-updates/events', 'get'],
      ['/referral-updates/events/{eventId}', 'get'],
      ['/referral-updates/events/{eventId}/replay', 'post'],
    ] as const) {
      expect(document.paths[path]?.[method]?.security, path).toEqual([{ functionKey: [] }, { functionKeyQuery: [] }]);
    }
    expect(document.paths['/referral-updates/status/{statusId}']?.get?.security).toEqual([]);
    expect(updateReferral?.security).toEqual([{ functionKey: [] }, { functionKeyQuery: [] }]);
    expect(document.components.securitySchemes.functionKey).toMatchObject({ in: 'header', name: 'x-functions-key' });
    expect(document.paths['/health']?.get?.security).toEqual([]);
    expect(document.paths['/openapi.json']?.get?.security).toEqual([]);
  });
});

/** The codes a problem response narrows Problem to, checking the narrowing itself. */
function narrowedCodes(response: { content?: Record<string, { schema?: unknown }> }, status: number): string[] {
  const schema = response.content?.['application/problem+json']?.schema as { allOf: JsonSchema[] };
  expect(schema.allOf[0]).toEqual({ $ref: '#/components/schemas/Problem' });
  const narrowed = schema.allOf[1] as { properties: { status: { const: number }; code: { enum: string[] } } };
  expect(narrowed.properties.status.const).toBe(status);
  return narrowed.properties.code.enum;
}

describe('contract v1.1: asynchronous delivery', () => {
  const post = updateReferral;
  const status = document.paths['/referral-updates/status/{statusId}']?.get;
  const list = document.paths['/referral-updates/events']?.get;
  const get = document.paths['/referral-updates/events/{eventId}']?.get;
  const replay = document.paths['/referral-updates/events/{eventId}/replay']?.post;
  const parameter = (ref: { $ref: string }) =>
    document.components.parameters[ref.$ref.replace('#/components/parameters/', '')];
  const parametersOf = (operation: typeof post) => (operation?.parameters ?? []).map(parameter);
  const headersOf = (operation: typeof post, code: string) => Object.keys(operation?.responses[code]?.headers ?? {});
  const at = (path: string, method: string, code: string, media = 'application/json') =>
    pointer('paths', path, method, 'responses', code, 'content', media, 'schema');

  it('is version 1.1 of the contract (additive: every v1 path is still there)', () => {
    expect(CONTRACT_VERSION).toBe('1.1.0');
    expect(document.info.version).toBe('1.1.0');
    expect(Object.keys(document.paths)).toEqual([
      '/referral-updates',
      '/referral-updates/status/{statusId}',
      '/referral-updates/events',
      '/referral-updates/events/{eventId}',
      '/referral-updates/events/{eventId}/replay',
      '/stages',
      '/health',
      '/openapi.json',
    ]);
    expect(post?.operationId).toBe('UpdateReferral');
    expect(status?.operationId).toBe('GetUpdateStatus');
    expect([list?.operationId, get?.operationId, replay?.operationId]).toEqual([
      'ListUpdateEvents',
      'GetUpdateEvent',
      'ReplayUpdateEvent',
    ]);
  });

  it('the POST takes the Prefer header and the async query parameter', () => {
    const byName = Object.fromEntries(parametersOf(post).map((p) => [p?.name, p]));
    expect(byName.Prefer).toMatchObject({ in: 'header', schema: { type: 'string', examples: ['respond-async'] } });
    expect(String(byName.Prefer?.description)).toContain('respond-async');
    expect(byName.async).toMatchObject({ in: 'query', schema: { type: 'boolean' } });
    expect(String(byName.async?.description)).toContain('DEFAULT_DELIVERY');
  });

  it('the POST declares the 202 with Location, Retry-After, MS-CorrelationId and Preference-Applied, and the Accepted body', () => {
    expect(headersOf(post, '202').sort()).toEqual(
      ['Location', 'MS-CorrelationId', 'Preference-Applied', 'Retry-After'].sort(),
    );
    expect(post?.responses['202']?.headers?.Location).toEqual({ $ref: '#/components/headers/Location' });
    expect(document.components.headers.Location).toMatchObject({ schema: { type: 'string', format: 'uri' } });
    expect(document.components.headers.PreferenceApplied).toMatchObject({ schema: { enum: ['respond-async'] } });
    expect(post?.responses['202']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/Accepted',
    });
    expect(acceptedSchema.safeParse(ACCEPTED_EXAMPLE).success).toBe(true);
    expect(check(at('/referral-updates', 'post', '202'), ACCEPTED_EXAMPLE)).toEqual([]);
    expect(
      check(at('/referral-updates', 'post', '202'), { ...ACCEPTED_EXAMPLE, state: 'running' }).length,
    ).toBeGreaterThan(0);
    // 503 delivery_unavailable (retryable) and async_unavailable come from the catalogue, with Retry-After.
    expect(narrowedCodes(post?.responses['503'] ?? {}, 503)).toEqual(
      expect.arrayContaining(['delivery_unavailable', 'async_unavailable']),
    );
    expect(headersOf(post, '503')).toContain('Retry-After');
  });

  it('the status URL: anonymous; 202 pending with Location and Retry-After, 200 the update result, final 4xx, 424 dead_lettered, 404', () => {
    expect(status?.security).toEqual([]);
    expect(parametersOf(status)).toEqual([expect.objectContaining({ name: 'statusId', in: 'path', required: true })]);
    const responses = status?.responses ?? {};
    expect(Object.keys(responses)).toEqual(['200', '202', '404', '422', '424', '500', '503']);
    expect(headersOf(status, '202').sort()).toEqual(['Location', 'MS-CorrelationId', 'Retry-After'].sort());
    expect(responses['202']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/PendingStatus',
    });
    expect(pendingStatusSchema.safeParse(PENDING_STATUS_EXAMPLE).success).toBe(true);
    expect(check(at('/referral-updates/status/{statusId}', 'get', '202'), PENDING_STATUS_EXAMPLE)).toEqual([]);
    expect(responses['200']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/UpdateResult',
    });
    expect(narrowedCodes(responses['404'] ?? {}, 404)).toEqual(['referral_not_found', 'event_not_found']);
    expect(narrowedCodes(responses['422'] ?? {}, 422)).toEqual(
      expect.arrayContaining(['transition_not_allowed', 'referral_closed', 'upstream_rejected']),
    );
    expect(narrowedCodes(responses['424'] ?? {}, 424)).toEqual(['dead_lettered']);
    expect(responses['424']?.description).toMatch(/replay/);
    // Nothing on the status URL is replayed from the idempotency store, and only a 503 says when to come back.
    for (const code of ['200', '404', '422', '424'])
      expect(headersOf(status, code)).not.toContain('Idempotent-Replayed');
    expect(headersOf(status, '424')).not.toContain('Retry-After');
  });

  it('the operations on events: list by state and referral, get, replay (202 with Location, 404, 409 replay_not_allowed)', () => {
    expect(parametersOf(list).map((p) => [p?.name, p?.in])).toEqual([
      ['state', 'query'],
      ['referralId', 'query'],
      ['top', 'query'],
      ['continuationToken', 'query'],
    ]);
    const state = parametersOf(list)[0]?.schema as JsonSchema;
    expect(state.enum).toEqual(expect.arrayContaining(['dead_lettered', 'dead-lettered', 'queued', 'succeeded']));
    expect(list?.responses['200']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/DeliveryList',
    });
    const page = { items: [DELIVERY_EXAMPLE], continuationToken: 'eyJuZXh0Ijoi' };
    expect(deliveryListSchema.safeParse(page).success).toBe(true);
    expect(check(at('/referral-updates/events', 'get', '200'), page)).toEqual([]);

    expect(parametersOf(get)).toEqual([expect.objectContaining({ name: 'eventId', in: 'path', required: true })]);
    expect(get?.responses['200']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/Delivery',
    });
    expect(deliverySummarySchema.safeParse(DELIVERY_EXAMPLE).success).toBe(true);
    expect(check(at('/referral-updates/events/{eventId}', 'get', '200'), DELIVERY_EXAMPLE)).toEqual([]);
    expect(narrowedCodes(get?.responses['404'] ?? {}, 404)).toEqual(['event_not_found']);

    expect(Object.keys(replay?.responses ?? {})).toEqual(['202', '404', '409', '500', '503']);
    expect(headersOf(replay, '202')).toContain('Location');
    expect(replay?.responses['202']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/Accepted',
    });
    expect(narrowedCodes(replay?.responses['409'] ?? {}, 409)).toEqual(['replay_not_allowed']);
    expect(headersOf(replay, '409')).not.toContain('Retry-After');
  });

  it('every code of the catalogue is documented on some operation, and each code of the operations on events only there', () => {
    const documented = new Map<string, string[]>();
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods as Record<string, typeof post>)) {
        for (const [code, response] of Object.entries(operation?.responses ?? {})) {
          if (!response.content?.['application/problem+json']) continue;
          for (const error of narrowedCodes(response, Number(code))) {
            documented.set(error, [...(documented.get(error) ?? []), `${method} ${path}`]);
          }
        }
      }
    }
    expect([...documented.keys()].sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ASYNC_OPERATION_CODES) {
      expect(
        documented.get(code)?.every((where) => where.includes('/status/') || where.includes('/events')),
        code,
      ).toBe(true);
    }
  });
});
