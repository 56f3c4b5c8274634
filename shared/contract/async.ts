/**
 * Contract v1.1, asynchronous delivery (docs/async-delivery.md): how a caller asks for it, and the bodies of
 * the `202` answer, the status URL and the operations' event list. Like responses.ts, these schemas are the
 * source of the OpenAPI document and the connector, and the tests parse real answers with them.
 */
import { z } from 'zod';
import type { FieldError } from '../core/errors.js';

/** How the adapter answers an event: when it is applied (`sync`), or at once with a status URL (`async`). */
export type DeliveryMode = 'sync' | 'async';

export const ASYNC_HEADERS = {
  /** RFC 7240: `Prefer: respond-async` asks for the asynchronous answer. */
  prefer: 'Prefer',
  /** RFC 7240: sent on the `202` to say the preference was honoured. */
  preferenceApplied: 'Preference-Applied',
  location: 'Location',
} as const;

export const RESPOND_ASYNC = 'respond-async';

/**
 * The delivery mode a request asks for: `?async=true|false` wins, then a `Prefer: respond-async` header,
 * then the app's default (`DEFAULT_DELIVERY`). A bad `async=` value is a field error naming `async`.
 */
export function deliveryModeOf(
  headers: { get(name: string): string | null },
  asyncQuery: string | null | undefined,
  defaultMode: DeliveryMode,
): DeliveryMode | FieldError {
  if (asyncQuery !== null && asyncQuery !== undefined) {
    if (asyncQuery === 'true' || asyncQuery === '1' || asyncQuery === '') return 'async';
    if (asyncQuery === 'false' || asyncQuery === '0') return 'sync';
    return {
      pointer: '',
      field: 'async',
      code: 'invalid_query',
      message: 'The async query parameter must be true or false.',
    };
  }
  const prefer = headers.get(ASYNC_HEADERS.prefer);
  if (prefer && prefersRespondAsync(prefer)) return 'async';
  return defaultMode;
}

/** RFC 7240 §2: a comma-separated list of preferences, each `token[=value]` with optional `;` parameters. */
export function prefersRespondAsync(prefer: string): boolean {
  return prefer
    .split(',')
    .some((preference) => preference.split(';')[0]?.split('=')[0]?.trim().toLowerCase() === RESPOND_ASYNC);
}

export const DELIVERY_STATE_VALUES = ['queued', 'running', 'retrying', 'succeeded', 'failed', 'dead_lettered'] as const;
export const PENDING_STATE_VALUES = ['queued', 'running', 'retrying'] as const;

const referralId = () => z.string().meta({ title: 'Referral ID', description: 'The referral the event is for.' });
const eventId = () =>
  z.string().meta({
    title: 'Event ID',
    description: 'The event id: yours, or the one the adapter gave an event that had none.',
  });
const isoTime = (title: string, description: string) => z.string().nullable().meta({ title, description });

export const deliveryErrorSchema = z
  .strictObject({
    code: z.string().meta({ title: 'Error Code', description: 'The error code of the last failed attempt.' }),
    status: z.number().int().meta({ title: 'Status', description: 'The HTTP status that attempt came to.' }),
  })
  .meta({ title: 'Last Error', description: 'The last failed attempt: a code and a status, no customer data.' });

export const acceptedSchema = z
  .strictObject({
    referralId: referralId(),
    eventId: eventId(),
    state: z.literal('queued').meta({ title: 'State', description: 'Always queued in this answer.' }),
    statusUrl: z.string().meta({
      title: 'Status URL',
      description:
        'Where to poll for the outcome (also in the Location header); it carries its own token, no function key is needed.',
    }),
  })
  .meta({ title: 'Accepted', description: 'The event is stored and queued; poll the status URL for its outcome.' });

export const pendingStatusSchema = z
  .strictObject({
    referralId: referralId(),
    eventId: eventId(),
    state: z.enum(PENDING_STATE_VALUES).meta({
      title: 'State',
      description: 'queued: waiting for its first attempt. running: being applied. retrying: waiting to try again.',
    }),
    attempts: z.number().int().min(0).meta({ title: 'Attempts', description: 'Attempts made so far.' }),
    nextAttemptAt: isoTime('Next Attempt At', 'retrying: when the next attempt is due (UTC); otherwise null.'),
    lastError: deliveryErrorSchema.nullable(),
  })
  .meta({ title: 'Pending', description: 'The event is not applied yet: poll again after Retry-After.' });

export const deliverySummarySchema = z
  .strictObject({
    eventId: eventId(),
    referralId: referralId(),
    state: z.enum(DELIVERY_STATE_VALUES).meta({ title: 'State', description: 'Where the event is.' }),
    attempts: z.number().int().min(0).meta({ title: 'Attempts', description: 'Attempts made so far.' }),
    acceptedAt: z.string().meta({ title: 'Accepted At', description: 'When it was accepted (or last replayed), UTC.' }),
    lastAttemptAt: isoTime('Last Attempt At', 'When the last attempt started, UTC.'),
    nextAttemptAt: isoTime('Next Attempt At', 'retrying: when the next attempt is due, UTC.'),
    deadLetteredAt: isoTime('Dead-Lettered At', 'dead_lettered: when it was given up, UTC.'),
    lastError: deliveryErrorSchema.nullable(),
    changedPaths: z
      .array(z.string())
      .nullable()
      .meta({ title: 'Changed Paths', description: 'succeeded: the JSON pointers of the fields the event changed.' }),
  })
  .meta({ title: 'Delivery', description: 'One accepted event, without customer values.' });

export const deliveryListSchema = z
  .strictObject({
    items: z.array(deliverySummarySchema).meta({ title: 'Items', description: 'The events of this page.' }),
    continuationToken: z.string().optional().meta({
      title: 'Continuation Token',
      description: 'Present when there are more: pass it as ?continuationToken= for the next page.',
    }),
  })
  .meta({ title: 'Deliveries', description: 'Accepted events by state and referral.' });

export type Accepted = z.infer<typeof acceptedSchema>;
export type PendingStatus = z.infer<typeof pendingStatusSchema>;
export type DeliverySummary = z.infer<typeof deliverySummarySchema>;
export type DeliveryList = z.infer<typeof deliveryListSchema>;
