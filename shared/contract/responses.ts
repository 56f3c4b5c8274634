/**
 * Contract v1, the answers: zod schemas of every body the HTTP functions send (the 200 result, the RFC
 * 9457 problem documents, health). They are the source of the OpenAPI document and the Power Automate
 * connector (contract/openapi.ts, tools/connector.ts), and the tests parse real answers of the running app
 * with them, so the documents cannot drift from the behaviour. Objects are strict: a field the code adds
 * without describing it here fails those tests.
 *
 * The error codes, their HTTP status and `retryable` come from the catalogue (ERROR_DEFINITIONS), never
 * from a second list.
 */
import { z } from 'zod';
import {
  ERROR_DEFINITIONS,
  type ErrorCode,
  type FieldError,
  PROBLEM_TYPE_PREFIX,
  type Problem,
} from '../core/errors.js';
import type { Change } from '../core/merge.js';
import { type JsonValue, STATUSES, SUBSTATUSES } from '../core/referral.js';
import type { Outcome, UpdateResult } from '../core/update.js';
import { DELIVERY_STATE_VALUES, deliveryErrorSchema } from './async.js';
import { stageMapping } from './stages.js';

export const ERROR_CODES = Object.keys(ERROR_DEFINITIONS) as [ErrorCode, ...ErrorCode[]];

/** The error codes the catalogue answers with each HTTP status, in catalogue order. */
export function errorCodesByStatus(): Map<number, ErrorCode[]> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of ERROR_CODES) {
    const { status } = ERROR_DEFINITIONS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return byStatus;
}

/**
 * Statuses whose answer may be a stored one replayed for a redelivered event id (final answers of events
 * that reached the idempotency store: use-cases/process-event.ts stores < 500 except 409/429; 400, 401, 413 and 415
 * are decided before the store is consulted).
 */
export const REPLAYABLE_STATUSES: readonly number[] = [200, 404, 422];

const httpStatus = () => z.number().int().min(100).max(599);

/** Any JSON value, as it came from Partner Center. A parsed answer can hold nothing else. */
const jsonValue = () => z.unknown() as unknown as z.ZodType<JsonValue>;

export const changeSchema = z
  .strictObject({
    path: z.string().meta({
      title: 'Path',
      description: 'JSON pointer into the referral, such as /details/dealValue or /substatus.',
      examples: ['/substatus'],
    }),
    from: jsonValue().meta({
      title: 'From',
      description: 'The value before the event; null when the field was absent.',
    }),
    to: jsonValue().meta({ title: 'To', description: 'The value after the event.' }),
  })
  .meta({ title: 'Change', description: 'One field the event changed (or, in a dry run, would change).' });

export const supersededSchema = z
  .strictObject({
    path: z.string().meta({
      title: 'Path',
      description: 'JSON pointer of the skipped field, such as /details/notes.',
      examples: ['/details/notes'],
    }),
    occurredAt: z.string().meta({
      title: 'Occurred At',
      description: 'The occurredAt of the later event that set the field.',
      examples: ['2026-11-25T09:30:02.000Z'],
    }),
  })
  .meta({ title: 'Superseded Field', description: 'A field a later event (by occurredAt) had already set.' });

const OUTCOMES = ['updated', 'unchanged', 'dry-run', 'stale'] as const satisfies readonly Outcome[];

export const updateResultSchema = z
  .strictObject({
    referralId: z.string().meta({ title: 'Referral ID', description: 'The referral the event was for.' }),
    eventId: z
      .string()
      .optional()
      .meta({ title: 'Event ID', description: 'The event id (header or body), when the event had one.' }),
    outcome: z.enum(OUTCOMES).meta({
      title: 'Outcome',
      description:
        'updated: written. unchanged: the referral already held every value, nothing was written. dry-run: nothing was written (see changes and wouldPut or wouldPatch). stale: every field of the event was set by an event with a later occurredAt; nothing was written.',
    }),
    status: z
      .string()
      .nullable()
      .meta({ title: 'Status', description: "The referral's status after the event; null when stale." }),
    substatus: z
      .string()
      .nullable()
      .meta({ title: 'Substatus', description: "The referral's substatus after the event; null when stale." }),
    eTag: z
      .string()
      .nullable()
      .meta({ title: 'ETag', description: "The referral's eTag after the event, quotes included; null when stale." }),
    changes: z.array(changeSchema).meta({
      title: 'Changes',
      description: 'One entry per field that changed (or would change, in a dry run); empty when nothing changed.',
    }),
    wouldPut: z
      .strictObject({
        ifMatch: z.string().meta({ title: 'If-Match', description: 'The eTag the write would be conditional on.' }),
        body: z.record(z.string(), jsonValue()).meta({
          title: 'Body',
          description: 'The exact PUT body: the full referral, customer details included.',
        }),
      })
      .nullable()
      .optional()
      .meta({
        title: 'Would PUT',
        description: 'Dry runs only: the write it would send, or null when nothing would change.',
      }),
    wouldPatch: z
      .strictObject({
        ifMatch: z.string().meta({ title: 'If-Match', description: 'The eTag the write would be conditional on.' }),
        operations: z
          .array(
            z.strictObject({
              op: z.enum(['replace', 'add']).meta({
                title: 'Operation',
                description: 'replace where the referral has the path, add where it does not.',
              }),
              path: z.string().meta({ title: 'Path', description: 'A JSON pointer into the referral.' }),
              value: jsonValue().meta({ title: 'Value', description: 'The value the path would hold.' }),
            }),
          )
          .meta({
            title: 'Operations',
            description: 'The exact JSON Patch document: only the changed paths.',
          }),
      })
      .nullable()
      .optional()
      .meta({
        title: 'Would PATCH',
        description:
          'Dry runs with PARTNER_CENTER_WRITE_METHOD=patch only, in place of wouldPut: the JSON Patch it would send, or null when nothing would change.',
      }),
    lastAppliedOccurredAt: z.string().optional().meta({
      title: 'Last Applied Occurred At',
      description: "Stale events only: the latest occurredAt among the later events that set this event's fields.",
    }),
    superseded: z.array(supersededSchema).min(1).optional().meta({
      title: 'Superseded',
      description:
        'Fields of this event that an event with a later occurredAt had already set: skipped, not written. Absent when none.',
    }),
    stage: stageMapping().optional().meta({
      title: 'Stage',
      description: 'Events with a stage only: the CRM stage and the status it mapped to through STAGE_MAP.',
    }),
    state: z.literal('succeeded').optional().meta({
      title: 'State',
      description:
        'Asynchronous delivery only: succeeded, on the answer of the status URL once the queued event was applied. Absent from synchronous answers.',
    }),
  })
  .meta({
    title: 'Update Result',
    description: 'The answer to an event that was applied, unchanged, dry-run or stale.',
  });

export const fieldErrorSchema = z
  .strictObject({
    field: z.string().meta({
      title: 'Field',
      description: 'The field as the caller wrote it, or body for the body as a whole.',
    }),
    pointer: z.string().meta({
      title: 'Pointer',
      description: "JSON pointer into the request body ('' for the body as a whole).",
    }),
    code: z.string().meta({
      title: 'Code',
      description: "Machine-readable reason (zod's issue code, or the adapter's own).",
    }),
    message: z.string().meta({ title: 'Message', description: 'What is wrong; never quotes the value that was sent.' }),
  })
  .meta({ title: 'Field Error', description: 'One bad field of an invalid event.' });

/** The labels and descriptions of a status and substatus pair inside a problem (metadata only). */
const STATE_STATUS = { title: 'Status', description: 'The status.' } as const;
const STATE_SUBSTATUS = { title: 'Substatus', description: 'The substatus.' } as const;

const stateSchema = z
  .strictObject({
    status: z.enum(STATUSES).meta(STATE_STATUS),
    substatus: z.enum(SUBSTATUSES).meta(STATE_SUBSTATUS),
  })
  .meta({ title: 'Allowed Target', description: 'A status and substatus the referral may move to.' });

export const problemSchema = z
  .strictObject({
    type: z.string().meta({
      title: 'Type',
      description: `The problem type, ${PROBLEM_TYPE_PREFIX}<code>.`,
      examples: [`${PROBLEM_TYPE_PREFIX}transition_not_allowed`],
    }),
    title: z.string().meta({ title: 'Title', description: 'A short summary of the error code.' }),
    status: httpStatus().meta({ title: 'Status', description: 'The HTTP status of this answer.' }),
    detail: z.string().meta({ title: 'Detail', description: 'What happened to this event, for a person.' }),
    code: z.enum(ERROR_CODES).meta({ title: 'Error Code', description: 'What to branch on.' }),
    retryable: z.boolean().meta({
      title: 'Retryable',
      description: 'Whether sending the same event again can succeed (409/5xx): retrying is always safe.',
    }),
    errors: z
      .array(fieldErrorSchema)
      .optional()
      .meta({ title: 'Errors', description: 'invalid_event: one entry per bad field.' }),
    referralId: z
      .string()
      .optional()
      .meta({ title: 'Referral ID', description: 'The referral the event was for, when known.' }),
    current: z
      .strictObject({
        status: z.string().nullable().meta(STATE_STATUS),
        substatus: z.string().nullable().meta(STATE_SUBSTATUS),
      })
      .optional()
      .meta({
        title: 'Current',
        description: "transition_not_allowed, referral_closed: the referral's current status and substatus.",
      }),
    requested: z
      .strictObject({
        status: z.enum(STATUSES).optional().meta(STATE_STATUS),
        substatus: z.enum(SUBSTATUSES).optional().meta(STATE_SUBSTATUS),
      })
      .optional()
      .meta({ title: 'Requested', description: 'transition_not_allowed: the state the event asked for.' }),
    allowedTargets: z.array(stateSchema).optional().meta({
      title: 'Allowed Targets',
      description: 'transition_not_allowed: the states the referral may move to (empty when none).',
    }),
    upstream: z
      .strictObject({
        status: httpStatus().optional().meta({ title: 'Status', description: "Partner Center's HTTP status." }),
        code: z
          .string()
          .optional()
          .meta({ title: 'Code', description: "Partner Center's error code, when it sent one." }),
        message: z
          .string()
          .optional()
          .meta({ title: 'Message', description: "Partner Center's error message, when it sent one." }),
      })
      .optional()
      .meta({
        title: 'Upstream',
        description: "Errors from Partner Center: its HTTP status and, when it sent one, its error's code and message.",
      }),
    problems: z
      .array(z.string())
      .optional()
      .meta({ title: 'Problems', description: 'configuration_invalid: every invalid setting.' }),
    stage: stageMapping().optional().meta({
      title: 'Stage',
      description:
        'transition_not_allowed, referral_closed, for an event with a stage: the CRM stage and the status it mapped to through STAGE_MAP.',
    }),
    state: z.enum(DELIVERY_STATE_VALUES).optional().meta({
      title: 'State',
      description:
        'Asynchronous delivery only: failed (the final problem of a queued event, on its status URL), dead_lettered, or the state that made replay_not_allowed.',
    }),
    eventId: z
      .string()
      .optional()
      .meta({ title: 'Event ID', description: 'dead_lettered, replay_not_allowed: the event id.' }),
    attempts: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ title: 'Attempts', description: 'dead_lettered: the attempts made to apply the event.' }),
    acceptedAt: z.string().optional().meta({
      title: 'Accepted At',
      description: 'dead_lettered: when the event was accepted (or last replayed), UTC.',
    }),
    lastAttemptAt: z
      .string()
      .nullable()
      .optional()
      .meta({ title: 'Last Attempt At', description: 'dead_lettered: when the last attempt started, UTC.' }),
    deadLetteredAt: z
      .string()
      .nullable()
      .optional()
      .meta({ title: 'Dead-Lettered At', description: 'dead_lettered: when the event was given up, UTC.' }),
    lastError: deliveryErrorSchema.nullable().optional().meta({
      title: 'Last Error',
      description: 'dead_lettered: the last failed attempt, a code and a status, no customer data.',
    }),
    replay: z
      .strictObject({
        method: z.literal('POST').meta({ title: 'Method', description: 'The HTTP method of the replay.' }),
        path: z.string().meta({
          title: 'Path',
          description:
            'The path of the replay on this host (function key), /api/referral-updates/events/{eventId}/replay.',
        }),
      })
      .optional()
      .meta({
        title: 'Replay',
        description: 'dead_lettered: how to put the event back in the queue once the cause is fixed.',
      }),
  })
  .superRefine((problem, ctx) => {
    // The catalogue decides status, retryable, title and type for each code: a document that disagrees is wrong.
    const definition = ERROR_DEFINITIONS[problem.code];
    const expected = {
      type: `${PROBLEM_TYPE_PREFIX}${problem.code}`,
      status: definition.status,
      retryable: definition.retryable,
      title: definition.title,
    };
    for (const [key, value] of Object.entries(expected)) {
      if (problem[key as keyof typeof expected] !== value) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${key} must be ${JSON.stringify(value)} for ${problem.code} (ERROR_DEFINITIONS)`,
        });
      }
    }
  })
  .meta({
    title: 'Problem',
    description:
      'An RFC 9457 problem document (application/problem+json). Branch on code; retryable says whether the same event may succeed later.',
  });

const refreshTokenSchema = z.strictObject({
  storedAt: z.string().meta({ description: 'When the newest stored version was written (the last rotation).' }),
  ageDays: z.number().meta({ description: 'Its age in days.' }),
  expiresAt: z.string().meta({ description: 'storedAt + 90 days: it dies then unless it is redeemed first.' }),
  daysLeft: z.number().meta({ description: 'Days until expiresAt.' }),
});

export const healthReportSchema = z
  .strictObject({
    status: z.enum(['ok', 'warning', 'misconfigured']).meta({
      description:
        'ok; warning: working, but something needs attention soon (see warnings); misconfigured: the settings are invalid (see problems), answered with 503.',
    }),
    version: z.string().meta({ description: "The app's version." }),
    node: z.string().meta({ description: 'The Node.js version it runs on.' }),
    partnerCenter: z
      .strictObject({ baseUrl: z.string(), loopback: z.boolean(), writeMethod: z.enum(['put', 'patch']) })
      .nullable()
      .meta({
        description:
          'The Referrals API origin in use and how updates are written (PUT or PATCH); null when misconfigured.',
      }),
    auth: z
      .strictObject({
        mode: z.enum(['managed-identity', 'app-user']),
        requests: z
          .number()
          .int()
          .nonnegative()
          .meta({ description: 'Token requests or redemptions by this instance.' }),
        lastSuccessAt: z.string().nullable(),
        lastFailureAt: z.string().nullable(),
        lastFailure: z.string().nullable().meta({ description: 'A log code, never a message.' }),
        lastRenewalAt: z.string().nullable().optional().meta({
          description:
            'app-user mode: when the keep-alive timer last redeemed the refresh token on this instance; null before the first.',
        }),
        lastRenewalFailure: z.string().nullable().optional().meta({
          description:
            'app-user mode: the log code of the last keep-alive redemption when it failed; null once one succeeds.',
        }),
        refreshToken: refreshTokenSchema.nullable().optional().meta({
          description: 'app-user mode: the stored refresh token (never its value); null when none is stored.',
        }),
        warnings: z.array(z.string()),
        userAssignedClientId: z.string().nullable(),
      })
      .nullable()
      .meta({ description: 'The token source; null when misconfigured.' }),
    telemetry: z
      .strictObject({
        status: z.enum(['off', 'starting', 'on', 'failed']).meta({
          description:
            'Application Insights: off (APPLICATIONINSIGHTS_CONNECTION_STRING unset), starting, on, or failed (the app runs without telemetry; a warning says so).',
        }),
        ingestion: z
          .enum(['key', 'entra'])
          .nullable()
          .meta({ description: 'How ingestion authenticates: the instrumentation key, or Entra ID; null when off.' }),
      })
      .nullable()
      .meta({ description: 'Telemetry; null when misconfigured.' }),
    signatures: z
      .strictObject({
        enforced: z.boolean().meta({
          description: 'true: WEBHOOK_SECRETS is set and every event must carry a valid Standard Webhooks signature.',
        }),
        secrets: z
          .number()
          .int()
          .nonnegative()
          .meta({ description: 'How many signing secrets are loaded (never their values); 2 while rotating.' }),
      })
      .nullable()
      .meta({ description: 'Signed webhooks; null when misconfigured.' }),
    delivery: z
      .strictObject({
        default: z.enum(['sync', 'async']).meta({
          description: 'How an event that asks for neither mode is answered (DEFAULT_DELIVERY).',
        }),
        available: z.boolean().meta({
          description: 'Whether asynchronous delivery can be used: the Table store and a queue connection.',
        }),
        queue: z.string().meta({ description: 'The queue of accepted events (ASYNC_QUEUE_NAME).' }),
        poisonQueue: z.string().meta({ description: 'Where the host moves messages it gave up on.' }),
      })
      .nullable()
      .meta({ description: 'Asynchronous delivery (docs/async-delivery.md); null when misconfigured.' }),
    problems: z.array(z.string()).meta({ description: 'Invalid settings (misconfigured only).' }),
    warnings: z.array(z.string()).meta({ description: 'What needs attention soon.' }),
  })
  .meta({
    title: 'Health report',
    description:
      'GET /api/health: version, upstream target, token state, whether signatures are enforced, configuration problems. Never a secret.',
  });

// Compile-time ties between the schemas and the types the code answers with. Where the code's type is
// wider than what it can really send (a JsonValue status, an `unknown` current state), the schema is the
// narrower, documented shape and only that direction is checked; the tests check real answers.
export type Extends<A, B> = [A] extends [B] ? true : false;
export type Expect<T extends true> = T;
export type ResponseContractTypeChecks = [
  Expect<Extends<z.output<typeof fieldErrorSchema>, FieldError>>,
  Expect<Extends<FieldError, z.output<typeof fieldErrorSchema>>>,
  Expect<Extends<z.output<typeof changeSchema>, Change>>,
  Expect<Extends<Change, z.output<typeof changeSchema>>>,
  Expect<Extends<z.output<typeof updateResultSchema>, UpdateResult>>,
  Expect<Extends<z.output<typeof problemSchema>, Problem>>,
  Expect<Extends<Outcome, (typeof OUTCOMES)[number]>>,
];
