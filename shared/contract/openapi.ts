/**
 * The OpenAPI 3.1 document of contract v1 (`GET /api/openapi.json`), generated from the zod schemas that
 * validate the requests (update-event.ts) and describe the answers (responses.ts), and from the
 * error catalogue (errors.ts): there is no second description to keep in step. Pure; built once per
 * process on first use. The Power Automate connector (tools/connector.ts) is converted from it.
 */
import type {
  ComponentsObject,
  HeaderObject,
  InfoObject,
  OpenAPIObject,
  OperationObject,
  ParameterObject,
  PathItemObject,
  ReferenceObject,
  RequestBodyObject,
  ResponseObject,
  SchemaObject,
  SecuritySchemeObject,
} from 'openapi3-ts/oas31';
import { z } from 'zod';
import { ERROR_DEFINITIONS } from '../core/errors.js';
import { REQUEST_HEADERS, RESPONSE_HEADERS, RETRY_AFTER_STATUSES } from './headers.js';
import {
  changeSchema,
  errorCodesByStatus,
  fieldErrorSchema,
  healthReportSchema,
  problemSchema,
  REPLAYABLE_STATUSES,
  supersededSchema,
  updateResultSchema,
} from './responses.js';
import { CHANGE_FIELDS, LIMITS, updateEventSchema } from './update-event.js';

/** A JSON Schema 2020-12 schema (the OpenAPI 3.1 dialect) as plain JSON, e.g. what zod generates. */
export type JsonSchema = { [keyword: string]: unknown };

/** The operations it builds: parameters by reference, the request body and the responses inline. */
export type Operation = Omit<OperationObject, 'operationId' | 'parameters' | 'requestBody' | 'responses'> & {
  operationId: string;
  parameters?: ReferenceObject[];
  requestBody?: RequestBodyObject;
  responses: Record<string, ResponseObject>;
};

/**
 * The document this module builds: an OpenAPI 3.1 object (openapi3-ts types) with the parts it always
 * fills made required, so readers need no checks for them. openapi3-ts 4.6 has no 3.1 Info `summary`.
 */
export type OpenApiDocument = Omit<OpenAPIObject, 'info' | 'paths' | 'components'> & {
  info: InfoObject & { summary: string };
  paths: Record<string, Omit<PathItemObject, 'get' | 'post'> & { get?: Operation; post?: Operation }>;
  components: Omit<ComponentsObject, 'schemas' | 'parameters' | 'headers' | 'securitySchemes'> & {
    schemas: Record<string, SchemaObject>;
    parameters: Record<string, ParameterObject>;
    headers: Record<string, HeaderObject>;
    securitySchemes: Record<string, SecuritySchemeObject>;
  };
};

/** The version of the contract the document describes (contract v1), not of the app. */
export const CONTRACT_VERSION = '1.0.0';

export const OPERATION_IDS = {
  updateReferral: 'UpdateReferral',
  health: 'GetHealth',
  openApi: 'GetOpenApiDocument',
} as const;

/** Paths below the route prefix (`/api`, the server URL). */
export const PATHS = {
  updateReferral: '/referral-updates',
  health: '/health',
  openApi: '/openapi.json',
} as const;

export const FUNCTION_KEY_HEADER = 'x-functions-key';

/** Request examples, each a valid event (the tests parse them with the contract). */
export const UPDATE_EVENT_EXAMPLES = {
  won: {
    summary: 'Won, with the deal value and the closing date',
    value: {
      referralId: '3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01',
      eventId: 'opportunity-7f1c-rv-1234567',
      substatus: 'Won',
      dealValue: 125000,
      currency: 'EUR',
      closingDate: '2026-12-31',
    },
  },
  accepted: {
    summary: 'Accepted (Active alone means Active/Accepted)',
    value: { referralId: '4a3c9d2f-8b5e-4fa0-82d3-6e7f8a9b0c12', status: 'Active', notes: 'Kick-off booked' },
  },
  dryRun: {
    summary: 'A dry run: the answer shows the changes and the PUT body, nothing is written',
    value: { referralId: '3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01', substatus: 'Lost', dryRun: true },
  },
} as const;

/** Answer examples, each valid against its response schema (the tests check them). */
export const UPDATE_RESULT_EXAMPLE = {
  referralId: '3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01',
  eventId: 'opportunity-7f1c-rv-1234567',
  outcome: 'updated',
  status: 'Closed',
  substatus: 'Won',
  eTag: '"d3b1c6a0-5f7e-4c1d-9a2b-8e4f6a7c9d01"',
  changes: [
    { path: '/details/dealValue', from: 50000, to: 125000 },
    { path: '/details/currency', from: 'USD', to: 'EUR' },
    { path: '/details/closingDateTime', from: '2026-12-15T00:00:00Z', to: '2026-12-31T00:00:00Z' },
    { path: '/status', from: 'New', to: 'Closed' },
    { path: '/substatus', from: 'Pending', to: 'Won' },
  ],
} as const;

export const PROBLEM_EXAMPLES = {
  transition_not_allowed: {
    type: 'urn:partner-referral-webhook:error:transition_not_allowed',
    title: ERROR_DEFINITIONS.transition_not_allowed.title,
    status: 422,
    detail: 'Referral 5b4d0e3a-9c6f-4a1b-93e4-7f8a9b0c1d23 cannot move from Active/Accepted to New/Pending.',
    code: 'transition_not_allowed',
    retryable: false,
    referralId: '5b4d0e3a-9c6f-4a1b-93e4-7f8a9b0c1d23',
    current: { status: 'Active', substatus: 'Accepted' },
    requested: { status: 'New', substatus: 'Pending' },
    allowedTargets: [
      { status: 'Active', substatus: 'Accepted' },
      { status: 'Closed', substatus: 'Won' },
      { status: 'Closed', substatus: 'Lost' },
      { status: 'Closed', substatus: 'Declined' },
      { status: 'Closed', substatus: 'Expired' },
    ],
  },
  invalid_event: {
    type: 'urn:partner-referral-webhook:error:invalid_event',
    title: ERROR_DEFINITIONS.invalid_event.title,
    status: 400,
    detail: 'The event has 1 invalid field: substaus.',
    code: 'invalid_event',
    retryable: false,
    errors: [
      {
        pointer: '/substaus',
        field: 'substaus',
        code: 'unrecognized_key',
        message: 'Unknown field "substaus". Did you mean "substatus"?',
      },
    ],
  },
  upstream_unavailable: {
    type: 'urn:partner-referral-webhook:error:upstream_unavailable',
    title: ERROR_DEFINITIONS.upstream_unavailable.title,
    status: 503,
    detail: 'Partner Center answered GET with 429; it is throttling or unavailable.',
    code: 'upstream_unavailable',
    retryable: true,
    referralId: '3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01',
    upstream: { status: 429, message: 'Rate limit is exceeded. Try again in 30 seconds.' },
  },
} as const;

const COMPONENT_SCHEMAS = {
  UpdateEvent: updateEventSchema,
  UpdateResult: updateResultSchema,
  Change: changeSchema,
  SupersededField: supersededSchema,
  Problem: problemSchema,
  FieldError: fieldErrorSchema,
  HealthReport: healthReportSchema,
} as const;

export type ComponentName = keyof typeof COMPONENT_SCHEMAS;

export const schemaRef = (name: ComponentName) => ({ $ref: `#/components/schemas/${name}` });

/** JSON Schema 2020-12 (the OpenAPI 3.1 dialect) of each component, cross-referenced with `$ref`. */
function componentSchemas(): Record<ComponentName, SchemaObject> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENT_SCHEMAS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    // What callers send (before transforms such as currency upper-casing) and what the app sends.
    io: 'input',
    uri: (id) => `#/components/schemas/${id}`,
    // In input mode zod drops the examples of a transforming schema (the case-insensitive enums, currency),
    // since they could be output values. Ours are inputs: kept when each one parses.
    override: ({ zodSchema, jsonSchema }) => {
      const schema = zodSchema as unknown as z.ZodType;
      const examples = z.globalRegistry.get(schema)?.examples;
      if (jsonSchema.examples !== undefined || !Array.isArray(examples)) return;
      if (examples.every((example) => schema.safeParse(example).success)) {
        jsonSchema.examples = examples;
      }
    },
  });
  const result = {} as Record<ComponentName, SchemaObject>;
  for (const name of Object.keys(COMPONENT_SCHEMAS) as ComponentName[]) {
    const { $schema: _dialect, $id: _id, ...schema } = schemas[name] as JsonSchema;
    result[name] = schema;
  }
  const extra = Object.keys(schemas).filter((id) => !(id in COMPONENT_SCHEMAS));
  // zod puts recursive or repeated parts in a `__shared` entry; none of these schemas has any.
  if (extra.length > 0) throw new Error(`unexpected schemas from zod: ${extra.join(', ')}`);
  result.UpdateEvent.description = `${String(result.UpdateEvent.description)} Change fields: ${CHANGE_FIELDS.join(', ')}.`;
  return result;
}

function errorList(codes: readonly (keyof typeof ERROR_DEFINITIONS)[]): string {
  return codes
    .map((code) => {
      const { title, retryable } = ERROR_DEFINITIONS[code];
      return `- \`${code}\`${retryable ? ' (retryable)' : ''}: ${title}.`;
    })
    .join('\n');
}

const STATUS_NOTES: Record<number, string> = {
  401: 'Azure Functions itself also answers 401, with an empty body, when the function key is missing or wrong.',
  409: 'Send the same event again after Retry-After seconds.',
  503: 'Send the same event again after Retry-After seconds.',
};

function headerRefs(status: number): Record<string, { $ref: string }> {
  const headers: Record<string, { $ref: string }> = {
    [RESPONSE_HEADERS.correlationId]: { $ref: '#/components/headers/CorrelationId' },
  };
  if (REPLAYABLE_STATUSES.includes(status)) {
    headers[RESPONSE_HEADERS.replayed] = { $ref: '#/components/headers/IdempotentReplayed' };
  }
  if (RETRY_AFTER_STATUSES.includes(status)) {
    headers[RESPONSE_HEADERS.retryAfter] = { $ref: '#/components/headers/RetryAfter' };
  }
  return headers;
}

function errorResponses(): Record<string, ResponseObject> {
  const responses: Record<string, ResponseObject> = {};
  const byStatus = [...errorCodesByStatus()].sort(([a], [b]) => a - b);
  for (const [status, codes] of byStatus) {
    const note = STATUS_NOTES[status];
    responses[String(status)] = {
      description: `${errorList(codes)}${note ? `\n\n${note}` : ''}`,
      headers: headerRefs(status),
      content: {
        'application/problem+json': {
          // The Problem schema, narrowed to the codes of this status.
          schema: {
            allOf: [
              schemaRef('Problem'),
              { type: 'object', properties: { status: { const: status }, code: { enum: codes } } },
            ],
          },
        },
      },
    };
  }
  return responses;
}

function updateReferralOperation(): Operation {
  const problemExamples = Object.entries(PROBLEM_EXAMPLES);
  const responses = errorResponses();
  for (const [name, example] of problemExamples) {
    const media = responses[String(example.status)]?.content?.['application/problem+json'];
    if (media) media.examples = { ...media.examples, [name]: { summary: example.title, value: example } };
  }
  return {
    operationId: OPERATION_IDS.updateReferral,
    summary: 'Update a referral',
    description: [
      'Applies one flat update event to one Partner Center referral: validates it, reads the referral and its eTag, merges only the fields the event names (every other field is kept), checks the status transition rules and writes it back with If-Match.',
      'Status shorthands: a substatus alone implies its status (Won means Closed/Won); Active alone means Active/Accepted; New alone keeps the current New substatus; Closed alone is refused. An event that changes nothing succeeds without a write, even on a closed referral.',
      `Send an event id (the eventId field, or the ${REQUEST_HEADERS.webhookId} or ${REQUEST_HEADERS.idempotencyKey} header): a redelivery then gets the stored answer, with ${RESPONSE_HEADERS.replayed}: true, and never applies twice. Retrying the same event after a retryable error is always safe.`,
    ].join('\n\n'),
    tags: ['Referrals'],
    security: [{ functionKey: [] }, { functionKeyQuery: [] }],
    parameters: ['CorrelationId', 'WebhookId', 'IdempotencyKey', 'WebhookTimestamp', 'WebhookSignature', 'DryRun'].map(
      (name) => ({ $ref: `#/components/parameters/${name}` }),
    ),
    requestBody: {
      required: true,
      description: 'The update event, as UTF-8 JSON (Content-Type: application/json; other media types get 415).',
      content: { 'application/json': { schema: schemaRef('UpdateEvent'), examples: { ...UPDATE_EVENT_EXAMPLES } } },
    },
    responses: {
      '200': {
        description:
          'The event was applied (outcome updated), changed nothing (unchanged), was a dry run, or was stale.',
        headers: headerRefs(200),
        content: {
          'application/json': {
            schema: schemaRef('UpdateResult'),
            examples: { updated: { summary: 'Closed/Won with the deal details', value: UPDATE_RESULT_EXAMPLE } },
          },
        },
      },
      ...responses,
    },
  };
}

export function buildOpenApiDocument(): OpenApiDocument {
  const maxEventId = LIMITS.eventId;
  return {
    openapi: '3.1.0',
    info: {
      title: 'Partner Center referral webhook',
      summary: 'Applies flat update events to Microsoft Partner Center referrals safely.',
      description:
        'Your CRM or Power Automate flow POSTs a small, flat update event; the adapter reads the referral, merges only the named fields, checks the status rules and writes it back with If-Match. Errors are RFC 9457 problem documents with a stable code and a retryable flag.',
      version: CONTRACT_VERSION,
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/api', description: 'This function app (the route prefix of host.json)' }],
    tags: [
      { name: 'Referrals', description: 'Update events' },
      { name: 'Operations', description: 'Health and this document' },
    ],
    paths: {
      [PATHS.updateReferral]: { post: updateReferralOperation() },
      [PATHS.health]: {
        get: {
          operationId: OPERATION_IDS.health,
          summary: 'Health',
          description:
            'Version, upstream target, token state and configuration problems; never a secret. Anonymous. In app-user mode it reads the refresh token metadata from Key Vault (at most every 5 minutes).',
          tags: ['Operations'],
          security: [],
          responses: {
            '200': {
              description: 'Working: status ok, or warning with the warnings that need attention soon.',
              content: { 'application/json': { schema: schemaRef('HealthReport') } },
            },
            '503': {
              description: 'Misconfigured: status misconfigured, with the problems.',
              content: { 'application/json': { schema: schemaRef('HealthReport') } },
            },
          },
        },
      },
      [PATHS.openApi]: {
        get: {
          operationId: OPERATION_IDS.openApi,
          summary: 'This document',
          description: 'The OpenAPI 3.1 document of contract v1. Anonymous.',
          tags: ['Operations'],
          security: [],
          responses: {
            '200': {
              description: 'The OpenAPI document.',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
          },
        },
      },
    },
    components: {
      schemas: componentSchemas(),
      parameters: {
        CorrelationId: {
          name: REQUEST_HEADERS.correlationId,
          in: 'header',
          description:
            "A GUID that follows the event through your logs, the adapter's logs and every Partner Center call; returned in the answer. One is generated when it is absent or not a GUID.",
          schema: { type: 'string', format: 'uuid' },
        },
        WebhookId: {
          name: REQUEST_HEADERS.webhookId,
          in: 'header',
          description: `The event id (Standard Webhooks), at most ${maxEventId} characters, not blank (an empty header is a 400). Wins over ${REQUEST_HEADERS.idempotencyKey} and the body's eventId. Required, and signed, when the app requires signatures (WEBHOOK_SECRETS).`,
          schema: { type: 'string', minLength: 1 },
        },
        IdempotencyKey: {
          name: REQUEST_HEADERS.idempotencyKey,
          in: 'header',
          description: `The event id, at most ${maxEventId} characters and not blank (an empty header or "" is a 400): a structured-field string ("8e03978e-40d5-43e8-bc93-6894a57f9324") or a bare token. Wins over the body's eventId.`,
          schema: { type: 'string', minLength: 1 },
        },
        WebhookTimestamp: {
          name: REQUEST_HEADERS.webhookTimestamp,
          in: 'header',
          description:
            'Required when the app requires signatures (WEBHOOK_SECRETS): the current Unix time in seconds, within 5 minutes.',
          schema: { type: 'string', pattern: '^\\d{1,12}$' },
        },
        WebhookSignature: {
          name: REQUEST_HEADERS.webhookSignature,
          in: 'header',
          description:
            'Required when the app requires signatures (WEBHOOK_SECRETS): space-separated v1,<base64 HMAC-SHA256 of "webhook-id.webhook-timestamp.body"> entries (Standard Webhooks). Anything else is 401 invalid_signature.',
          schema: { type: 'string' },
        },
        DryRun: {
          name: 'dryRun',
          in: 'query',
          description:
            'true: a dry run, like the body field dryRun (1, or an empty value, also mean true; 0 means false). Any other value is a 400, and so is any value when signed webhooks are required (the query is not signed: send dryRun in the body).',
          schema: { type: 'boolean' },
        },
      },
      headers: {
        CorrelationId: {
          description: 'The correlation id of this event: the one sent, or a new one. Search the logs for it.',
          schema: { type: 'string', format: 'uuid' },
        },
        IdempotentReplayed: {
          description:
            'true when this is the stored answer to an earlier delivery of the same event id (nothing was done again).',
          schema: { type: 'string', enum: ['true'] },
        },
        RetryAfter: {
          description: 'Seconds to wait before sending the same event again.',
          schema: { type: 'integer', minimum: 0 },
        },
      },
      securitySchemes: {
        functionKey: {
          type: 'apiKey',
          in: 'header',
          name: FUNCTION_KEY_HEADER,
          description: 'A function key of referral-updates (or a host key). Not checked by the local host.',
        },
        functionKeyQuery: {
          type: 'apiKey',
          in: 'query',
          name: 'code',
          description: 'The same key as the code query parameter.',
        },
      },
    },
  };
}

let cached: { document: OpenApiDocument; json: string } | undefined;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/** The document, built on first use and kept for the life of the process (read-only). */
export function openApiDocument(): OpenApiDocument {
  cached ??= (() => {
    const document = deepFreeze(buildOpenApiDocument());
    return { document, json: JSON.stringify(document) };
  })();
  return cached.document;
}

/** The document as served: compact JSON, serialized once. */
export function openApiJson(): string {
  openApiDocument();
  return (cached as { json: string }).json;
}
