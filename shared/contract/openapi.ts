/**
 * The OpenAPI 3.1 document of contract v1.1 (`GET /api/openapi.json`), generated from the zod schemas that
 * validate the requests (update-event.ts) and describe the answers (responses.ts, and async.ts for the
 * asynchronous delivery of v1.1), and from the error catalogue (errors.ts): there is no second description
 * to keep in step. Pure; built once per
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
  SecurityRequirementObject,
  SecuritySchemeObject,
} from 'openapi3-ts/oas31';
import { z } from 'zod';
import { ERROR_DEFINITIONS, type ErrorCode } from '../core/errors.js';
import {
  ASYNC_HEADERS,
  acceptedSchema,
  DELIVERY_STATE_VALUES,
  deliveryErrorSchema,
  deliveryListSchema,
  deliverySummarySchema,
  pendingStatusSchema,
  RESPOND_ASYNC,
} from './async.js';
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
import { stageListSchema, stageSchema } from './stages.js';
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

/**
 * The version of the contract the document describes, not of the app: contract v1.1, which is v1 plus
 * asynchronous delivery (additive: every v1 request gets the answer it got before).
 */
export const CONTRACT_VERSION = '1.1.0';

export const OPERATION_IDS = {
  updateReferral: 'UpdateReferral',
  updateStatus: 'GetUpdateStatus',
  listEvents: 'ListUpdateEvents',
  getEvent: 'GetUpdateEvent',
  replayEvent: 'ReplayUpdateEvent',
  listStages: 'ListStages',
  health: 'GetHealth',
  openApi: 'GetOpenApiDocument',
} as const;

/** Paths below the route prefix (`/api`, the server URL). */
export const PATHS = {
  updateReferral: '/referral-updates',
  updateStatus: '/referral-updates/status/{statusId}',
  events: '/referral-updates/events',
  event: '/referral-updates/events/{eventId}',
  replayEvent: '/referral-updates/events/{eventId}/replay',
  stages: '/stages',
  health: '/health',
  openApi: '/openapi.json',
} as const;

/**
 * Error codes only the asynchronous operations answer with (the status URL and the operations on events),
 * never `POST /referral-updates`.
 */
export const ASYNC_OPERATION_CODES = [
  'event_not_found',
  'dead_lettered',
  'replay_not_allowed',
] as const satisfies readonly ErrorCode[];

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
  stage: {
    summary:
      "The CRM's own stage, mapped by STAGE_MAP (here salesforce: Closed Won is Closed/Won); blank columns as null",
    value: {
      referralId: '3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01',
      eventId: 'opportunity-7f1c-rv-1234568',
      stage: 'Closed Won',
      dealValue: 125000,
      currency: 'EUR',
      notes: null,
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

/** `GET /stages` with STAGE_MAP=salesforce, its first and last stages. */
const STAGE_LIST_EXAMPLE = {
  source: 'salesforce',
  stages: [
    { name: 'Prospecting', target: 'New', title: 'Prospecting (New)' },
    { name: 'Needs Analysis', target: 'Active/Accepted', title: 'Needs Analysis (Active/Accepted)' },
    { name: 'Closed Won', target: 'Closed/Won', title: 'Closed Won (Closed/Won)' },
    { name: 'Closed Lost', target: 'Closed/Lost', title: 'Closed Lost (Closed/Lost)' },
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

/** Contract v1.1 examples, each valid against its schema (the tests check them). */
const EXAMPLE_STATUS_URL =
  'https://your-function-app.azurewebsites.net/api/referral-updates/status/b3Bwb3J0dW5pdHktN2YxYy1ydi0xMjM0NTY3.eVJt1lvhhlxvqAranqcE2DpD';

export const ACCEPTED_EXAMPLE = {
  referralId: '3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01',
  eventId: 'opportunity-7f1c-rv-1234567',
  state: 'queued',
  statusUrl: EXAMPLE_STATUS_URL,
} as const;

export const PENDING_STATUS_EXAMPLE = {
  referralId: '3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01',
  eventId: 'opportunity-7f1c-rv-1234567',
  state: 'retrying',
  attempts: 3,
  nextAttemptAt: '2026-11-26T10:04:00.000Z',
  lastError: { code: 'upstream_unavailable', status: 503 },
} as const;

export const DELIVERY_EXAMPLE = {
  eventId: 'opportunity-7f1c-rv-1234567',
  referralId: '3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01',
  state: 'dead_lettered',
  attempts: 97,
  acceptedAt: '2026-11-25T10:00:00.000Z',
  lastAttemptAt: '2026-11-26T09:51:12.000Z',
  nextAttemptAt: null,
  deadLetteredAt: '2026-11-26T09:51:14.000Z',
  lastError: { code: 'upstream_unavailable', status: 503 },
  changedPaths: null,
} as const;

const COMPONENT_SCHEMAS = {
  UpdateEvent: updateEventSchema,
  UpdateResult: updateResultSchema,
  Change: changeSchema,
  SupersededField: supersededSchema,
  Problem: problemSchema,
  FieldError: fieldErrorSchema,
  HealthReport: healthReportSchema,
  Accepted: acceptedSchema,
  PendingStatus: pendingStatusSchema,
  Delivery: deliverySummarySchema,
  DeliveryList: deliveryListSchema,
  DeliveryError: deliveryErrorSchema,
  StageList: stageListSchema,
  Stage: stageSchema,
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

/** Which statuses of an operation carry Idempotent-Replayed and Retry-After (by default, those of the POST). */
interface HeaderRules {
  replayable: readonly number[];
  retryAfter: readonly number[];
}

const UPDATE_HEADER_RULES: HeaderRules = { replayable: REPLAYABLE_STATUSES, retryAfter: RETRY_AFTER_STATUSES };
/** The operations of v1.1 other than the POST: nothing is replayed; only a 503 says when to come back. */
const ASYNC_HEADER_RULES: HeaderRules = { replayable: [], retryAfter: [503] };

const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` });

function headerRefs(status: number, rules: HeaderRules = UPDATE_HEADER_RULES): Record<string, { $ref: string }> {
  const headers: Record<string, { $ref: string }> = {
    [RESPONSE_HEADERS.correlationId]: headerRef('CorrelationId'),
  };
  if (rules.replayable.includes(status)) {
    headers[RESPONSE_HEADERS.replayed] = headerRef('IdempotentReplayed');
  }
  if (rules.retryAfter.includes(status)) {
    headers[RESPONSE_HEADERS.retryAfter] = headerRef('RetryAfter');
  }
  return headers;
}

/** The headers of a `202` that points at a status URL (`Location`, and when to look at it). */
function acceptedHeaderRefs(preferenceApplied: boolean): Record<string, { $ref: string }> {
  return {
    [RESPONSE_HEADERS.correlationId]: headerRef('CorrelationId'),
    [ASYNC_HEADERS.location]: headerRef('Location'),
    [RESPONSE_HEADERS.retryAfter]: headerRef('PollRetryAfter'),
    ...(preferenceApplied ? { [ASYNC_HEADERS.preferenceApplied]: headerRef('PreferenceApplied') } : {}),
  };
}

/**
 * One problem response per status for the given codes (in catalogue order), each narrowing Problem to its
 * codes and listing them, with the operation's notes.
 */
function errorResponses(
  only: readonly ErrorCode[],
  notes: Record<number, string> = STATUS_NOTES,
  rules: HeaderRules = UPDATE_HEADER_RULES,
): Record<string, ResponseObject> {
  const responses: Record<string, ResponseObject> = {};
  const byStatus = [...errorCodesByStatus()]
    .map(([status, codes]) => [status, codes.filter((code) => only.includes(code))] as const)
    .filter(([, codes]) => codes.length > 0)
    .sort(([a], [b]) => a - b);
  for (const [status, codes] of byStatus) {
    const note = notes[status];
    responses[String(status)] = {
      description: `${errorList(codes)}${note ? `\n\n${note}` : ''}`,
      headers: headerRefs(status, rules),
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

/** The codes `POST /referral-updates` answers with: the catalogue but those of the operations on events. */
export function updateErrorCodes(): ErrorCode[] {
  return (Object.keys(ERROR_DEFINITIONS) as ErrorCode[]).filter(
    (code) => !(ASYNC_OPERATION_CODES as readonly ErrorCode[]).includes(code),
  );
}

const parameterRefs = (...names: string[]) => names.map((name) => ({ $ref: `#/components/parameters/${name}` }));

/** The function key, as a header or as the code query parameter. */
const functionKeySecurity = (): SecurityRequirementObject[] => [{ functionKey: [] }, { functionKeyQuery: [] }];

function updateReferralOperation(): Operation {
  const problemExamples = Object.entries(PROBLEM_EXAMPLES);
  const responses = errorResponses(updateErrorCodes());
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
      `Instead of status and substatus, stage names your CRM's own stage, which the app's STAGE_MAP maps to them (GET ${PATHS.stages} lists the stages); the mapped change follows the same rules, and the answer's stage says what it mapped to. null in any field means not given: a blank CRM column changes nothing (no field can be cleared).`,
      `Send an event id (the eventId field, or the ${REQUEST_HEADERS.webhookId} or ${REQUEST_HEADERS.idempotencyKey} header): a redelivery then gets the stored answer, with ${RESPONSE_HEADERS.replayed}: true, and never applies twice. Retrying the same event after a retryable error is always safe.`,
      `Asynchronous delivery (contract v1.1): with ${ASYNC_HEADERS.prefer}: ${RESPOND_ASYNC}, or async=true, or when the app's DEFAULT_DELIVERY is async (async=false then asks for the synchronous answer), everything that needs no Partner Center call is decided first (400, 401, 413, 415), then the event is stored and queued and the answer is 202 with ${ASYNC_HEADERS.location}: the status URL. The queue applies the event with the same rules, retrying for as long as ASYNC_MAX_AGE_SECONDS allows. The same event id with the same body answers 202 with the same status URL; with another body, 422 idempotency_key_reused. A dry run is always synchronous.`,
    ].join('\n\n'),
    tags: ['Referrals'],
    security: functionKeySecurity(),
    parameters: parameterRefs(
      'CorrelationId',
      'WebhookId',
      'IdempotencyKey',
      'WebhookTimestamp',
      'WebhookSignature',
      'DryRun',
      'Prefer',
      'Async',
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
      '202': {
        description: `Asynchronous delivery (${ASYNC_HEADERS.prefer}: ${RESPOND_ASYNC}, async=true or DEFAULT_DELIVERY=async): the event is stored and queued. Poll the status URL (${ASYNC_HEADERS.location}, also statusUrl in the body) after ${RESPONSE_HEADERS.retryAfter} seconds until it answers something other than 202.`,
        headers: acceptedHeaderRefs(true),
        content: {
          'application/json': {
            schema: schemaRef('Accepted'),
            examples: { queued: { summary: 'Stored and queued', value: ACCEPTED_EXAMPLE } },
          },
        },
      },
      ...responses,
    },
  };
}

const ASYNC_SERVER_ERRORS: ErrorCode[] = [
  'configuration_invalid',
  'internal_error',
  'delivery_unavailable',
  'async_unavailable',
];

const ASYNC_NOTES: Record<number, string> = {
  503: 'delivery_unavailable: try again after Retry-After seconds. async_unavailable: the app runs without the Table store and the queue (IDEMPOTENCY_STORE=memory).',
};

function updateStatusOperation(): Operation {
  const responses = errorResponses(
    [
      'referral_not_found',
      'event_not_found',
      'transition_not_allowed',
      'referral_closed',
      'upstream_rejected',
      'idempotency_key_reused',
      'dead_lettered',
      ...ASYNC_SERVER_ERRORS,
    ],
    {
      ...ASYNC_NOTES,
      404: 'event_not_found: no such event, or a wrong or malformed status id; nothing else is revealed. referral_not_found: the final answer of the event, with state failed.',
      422: 'The final answer of the event (what a synchronous call would have answered), with state failed.',
      424: `The event was given up (state dead_lettered): it could not be applied within ASYNC_MAX_AGE_SECONDS of its acceptance, or its queue message was poisoned. A final 4xx, so a polling client (Power Automate) stops at once and fails the action instead of retrying an answer that cannot change. The problem carries eventId, referralId, attempts, acceptedAt, lastAttemptAt, deadLetteredAt, lastError and replay: POST ${PATHS.replayEvent} (function key) puts it back in the queue.`,
    },
    ASYNC_HEADER_RULES,
  );
  return {
    operationId: OPERATION_IDS.updateStatus,
    summary: 'Status of an asynchronous update',
    description: [
      `The status URL of an event accepted with 202 (its ${ASYNC_HEADERS.location}): absolute, on the host and /api base of the POST, with an opaque per-event token instead of the function key (Power Automate and custom connectors do not carry the key over to a ${ASYNC_HEADERS.location}). Anonymous: the token is the credential.`,
      `While the event is queued, running or retrying: 202 with the same ${ASYNC_HEADERS.location} and ${RESPONSE_HEADERS.retryAfter}. When it is done: exactly what a synchronous call would have answered (200, or the final 4xx problem), with state succeeded or failed added. When it was given up: 424 dead_lettered.`,
    ].join('\n\n'),
    tags: ['Referrals'],
    security: [],
    parameters: parameterRefs('StatusId'),
    responses: {
      '200': {
        description: 'The event was applied (state succeeded): the 200 answer of a synchronous call, with state added.',
        headers: headerRefs(200, ASYNC_HEADER_RULES),
        content: {
          'application/json': {
            schema: schemaRef('UpdateResult'),
            examples: { updated: { summary: 'Closed/Won with the deal details', value: UPDATE_RESULT_EXAMPLE } },
          },
        },
      },
      '202': {
        description: `Not applied yet (queued, running or retrying): poll the same ${ASYNC_HEADERS.location} again after ${RESPONSE_HEADERS.retryAfter} seconds.`,
        headers: acceptedHeaderRefs(false),
        content: {
          'application/json': {
            schema: schemaRef('PendingStatus'),
            examples: { retrying: { summary: 'Partner Center is throttling', value: PENDING_STATUS_EXAMPLE } },
          },
        },
      },
      ...responses,
    },
  };
}

function listEventsOperation(): Operation {
  return {
    operationId: OPERATION_IDS.listEvents,
    summary: 'List asynchronous events',
    description:
      'The events accepted for asynchronous delivery, by state and by referral, a page at a time: ids, states, times, error codes and changed paths, never a customer value. Function key.',
    tags: ['Deliveries'],
    security: functionKeySecurity(),
    parameters: parameterRefs('DeliveryState', 'ReferralIdFilter', 'Top', 'ContinuationToken'),
    responses: {
      '200': {
        description: 'A page of events; continuationToken is present when there are more.',
        headers: headerRefs(200, ASYNC_HEADER_RULES),
        content: {
          'application/json': {
            schema: schemaRef('DeliveryList'),
            examples: { deadLettered: { summary: 'One dead-lettered event', value: { items: [DELIVERY_EXAMPLE] } } },
          },
        },
      },
      ...errorResponses(
        ['invalid_event', ...ASYNC_SERVER_ERRORS],
        { ...ASYNC_NOTES, 400: 'A bad state, top or continuationToken query parameter, named in errors.' },
        ASYNC_HEADER_RULES,
      ),
    },
  };
}

function getEventOperation(): Operation {
  return {
    operationId: OPERATION_IDS.getEvent,
    summary: 'Get an asynchronous event',
    description:
      'One event accepted for asynchronous delivery: its state, attempts, times, last error and changed paths, never a customer value. Function key.',
    tags: ['Deliveries'],
    security: functionKeySecurity(),
    parameters: parameterRefs('EventId'),
    responses: {
      '200': {
        description: 'The event.',
        headers: headerRefs(200, ASYNC_HEADER_RULES),
        content: {
          'application/json': {
            schema: schemaRef('Delivery'),
            examples: { deadLettered: { summary: 'A dead-lettered event', value: DELIVERY_EXAMPLE } },
          },
        },
      },
      ...errorResponses(['event_not_found', ...ASYNC_SERVER_ERRORS], ASYNC_NOTES, ASYNC_HEADER_RULES),
    },
  };
}

function replayEventOperation(): Operation {
  return {
    operationId: OPERATION_IDS.replayEvent,
    summary: 'Replay a dead-lettered event',
    description:
      'Puts a dead-lettered event back in the queue under the same id: state queued, its attempts kept, a new ASYNC_MAX_AGE_SECONDS window from now (its order among other events stays that of its first acceptance). It is applied once, like any queued event. Function key.',
    tags: ['Deliveries'],
    security: functionKeySecurity(),
    parameters: parameterRefs('EventId'),
    responses: {
      '202': {
        description: `Queued again: poll the status URL (${ASYNC_HEADERS.location}, the same as when it was accepted).`,
        headers: acceptedHeaderRefs(false),
        content: {
          'application/json': {
            schema: schemaRef('Accepted'),
            examples: { queued: { summary: 'Queued again', value: ACCEPTED_EXAMPLE } },
          },
        },
      },
      ...errorResponses(
        ['event_not_found', 'replay_not_allowed', ...ASYNC_SERVER_ERRORS],
        { ...ASYNC_NOTES, 409: 'Only a dead_lettered event can be replayed; the detail names its state.' },
        ASYNC_HEADER_RULES,
      ),
    },
  };
}

function listStagesOperation(): Operation {
  return {
    operationId: OPERATION_IDS.listStages,
    summary: 'List the CRM stages',
    description:
      "The CRM stages the app's STAGE_MAP maps, each with its target status and substatus, in the order of the map: the values an event's stage may take. Empty when STAGE_MAP is unset. Function key (a host key opens it too).",
    tags: ['Referrals'],
    security: functionKeySecurity(),
    responses: {
      '200': {
        description: 'The configured stages.',
        headers: headerRefs(200, ASYNC_HEADER_RULES),
        content: {
          'application/json': {
            schema: schemaRef('StageList'),
            examples: { salesforce: { summary: 'STAGE_MAP=salesforce (shortened)', value: STAGE_LIST_EXAMPLE } },
          },
        },
      },
      ...errorResponses(['configuration_invalid'], {}, ASYNC_HEADER_RULES),
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
        'Your CRM or Power Automate flow POSTs a small, flat update event; the adapter reads the referral, merges only the named fields, checks the status rules and writes it back with If-Match. Errors are RFC 9457 problem documents with a stable code and a retryable flag. Contract v1.1 adds asynchronous delivery: 202 with a status URL, a durable queue that retries for as long as Partner Center needs, dead letters and replay.',
      version: CONTRACT_VERSION,
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/api', description: 'This function app (the route prefix of host.json)' }],
    tags: [
      { name: 'Referrals', description: 'Update events' },
      { name: 'Deliveries', description: 'Events accepted for asynchronous delivery: list, inspect, replay' },
      { name: 'Operations', description: 'Health and this document' },
    ],
    paths: {
      [PATHS.updateReferral]: { post: updateReferralOperation() },
      [PATHS.updateStatus]: { get: updateStatusOperation() },
      [PATHS.events]: { get: listEventsOperation() },
      [PATHS.event]: { get: getEventOperation() },
      [PATHS.replayEvent]: { post: replayEventOperation() },
      [PATHS.stages]: { get: listStagesOperation() },
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
          description: 'The OpenAPI 3.1 document of contract v1.1. Anonymous.',
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
        Prefer: {
          name: ASYNC_HEADERS.prefer,
          in: 'header',
          description: `${RESPOND_ASYNC} (RFC 7240) asks for the asynchronous answer: 202 with a status URL. Other preferences are ignored. The async query parameter wins over it; a dry run is always answered synchronously.`,
          schema: { type: 'string', examples: [RESPOND_ASYNC] },
        },
        Async: {
          name: 'async',
          in: 'query',
          description: `true: answer asynchronously, like ${ASYNC_HEADERS.prefer}: ${RESPOND_ASYNC}; false: answer synchronously even when the app's DEFAULT_DELIVERY is async (1 and an empty value also mean true, 0 means false). Wins over ${ASYNC_HEADERS.prefer}. Any other value is a 400 invalid_event naming async.`,
          schema: { type: 'boolean' },
        },
        StatusId: {
          name: 'statusId',
          in: 'path',
          required: true,
          description:
            'The opaque id of the status URL, as the 202 gave it: the event id and a per-event token. Any other value is a 404.',
          schema: { type: 'string', minLength: 1 },
        },
        EventId: {
          name: 'eventId',
          in: 'path',
          required: true,
          description: 'The event id: yours, or the one the 202 gave an event that had none.',
          schema: { type: 'string', minLength: 1, maxLength: maxEventId },
        },
        DeliveryState: {
          name: 'state',
          in: 'query',
          description: 'Only events in this state (dead-lettered is accepted for dead_lettered).',
          schema: { type: 'string', enum: [...DELIVERY_STATE_VALUES, 'dead-lettered'] },
        },
        ReferralIdFilter: {
          name: 'referralId',
          in: 'query',
          description: 'Only events for this referral.',
          schema: { type: 'string', minLength: 1 },
        },
        Top: {
          name: 'top',
          in: 'query',
          description: 'At most this many events in the page (default 50).',
          schema: { type: 'integer', minimum: 1, default: 50 },
        },
        ContinuationToken: {
          name: 'continuationToken',
          in: 'query',
          description: 'The continuationToken of the previous page, as it was given.',
          schema: { type: 'string' },
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
        Location: {
          description:
            'The status URL: absolute, on this host under /api, with its own token (no function key is needed).',
          schema: { type: 'string', format: 'uri' },
        },
        PollRetryAfter: {
          description: 'Seconds to wait before polling the status URL.',
          schema: { type: 'integer', minimum: 1 },
        },
        PreferenceApplied: {
          description: `${RESPOND_ASYNC}: the request was answered asynchronously (RFC 7240).`,
          schema: { type: 'string', enum: [RESPOND_ASYNC] },
        },
      },
      securitySchemes: {
        functionKey: {
          type: 'apiKey',
          in: 'header',
          name: FUNCTION_KEY_HEADER,
          description:
            'A function key of referral-updates (or a host key; the stage list and the operations on events are other functions, so a host key opens them all). Not checked by the local host.',
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
