/**
 * The OpenAPI 3.1 document against its sources: a real OpenAPI validator, the zod contract field by
 * field, the error catalogue, and its own examples (each one parsed by the contract and validated by the
 * document's JSON Schemas with Ajv).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import type { ExampleObject, ReferenceObject } from 'openapi3-ts/oas31';
import { describe, expect, it } from 'vitest';
import {
  buildOpenApiDocument,
  type JsonSchema,
  openApiDocument,
  openApiJson,
  PROBLEM_EXAMPLES,
  UPDATE_EVENT_EXAMPLES,
  UPDATE_RESULT_EXAMPLE,
} from '../../shared/contract/openapi.js';
import { ERROR_CODES, problemSchema, updateResultSchema } from '../../shared/contract/responses.js';
import { CHANGE_FIELDS, LIMITS, parseUpdateEvent, updateEventSchema } from '../../shared/contract/update-event.js';
import { ERROR_DEFINITIONS } from '../../shared/core/errors.js';
import { STATUSES, SUBSTATUSES } from '../../shared/core/referral.js';
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

  it('takes the enums from the referral model and the lengths from LIMITS', () => {
    const { properties } = eventJsonSchema;
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
      expect(() => parseUpdateEvent(value), name).not.toThrow();
      expect(check(EVENT, value), name).toEqual([]);
    }
  });
});

describe('the answers', () => {
  const responses = updateReferral?.responses ?? {};

  it('documents one error response per status of the catalogue, each listing exactly its codes', () => {
    const statuses = [...new Set(Object.values(ERROR_DEFINITIONS).map((d) => d.status))].sort();
    expect(Object.keys(responses).sort()).toEqual(['200', ...statuses.map(String)].sort());
    const documented: string[] = [];
    for (const [status, response] of Object.entries(responses)) {
      if (status === '200') continue;
      const schema = response.content?.['application/problem+json']?.schema as { allOf: JsonSchema[] };
      expect(schema.allOf[0]).toEqual({ $ref: '#/components/schemas/Problem' });
      const narrowed = schema.allOf[1] as { properties: { status: { const: number }; code: { enum: string[] } } };
      expect(narrowed.properties.status.const).toBe(Number(status));
      const codes = Object.entries(ERROR_DEFINITIONS)
        .filter(([, d]) => d.status === Number(status))
        .map(([code]) => code);
      expect(narrowed.properties.code.enum).toEqual(codes);
      for (const code of codes) expect(response.description).toContain(`\`${code}\``);
      documented.push(...codes);
    }
    expect(documented.sort()).toEqual([...ERROR_CODES].sort());
    const problem = document.components.schemas.Problem as { properties: { code: { enum: string[] } } };
    expect(problem.properties.code.enum).toEqual(ERROR_CODES);
  });

  it('documents Retry-After on 409 and 503, Idempotent-Replayed on the answers that are stored for replay', () => {
    const headersOf = (status: string) => Object.keys(responses[status]?.headers ?? {});
    for (const status of Object.keys(responses)) expect(headersOf(status)).toContain('MS-CorrelationId');
    expect(Object.keys(responses).filter((s) => headersOf(s).includes('Retry-After'))).toEqual(['409', '503']);
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

  it('function key on the update, anonymous health and document', () => {
    expect(updateReferral?.security).toEqual([{ functionKey: [] }, { functionKeyQuery: [] }]);
    expect(document.components.securitySchemes.functionKey).toMatchObject({ in: 'header', name: 'x-functions-key' });
    expect(document.paths['/health']?.get?.security).toEqual([]);
    expect(document.paths['/openapi.json']?.get?.security).toEqual([]);
  });
});
