/**
 * Public contract v1: the flat update event a CRM or a flow POSTs to `/api/referral-updates`.
 *
 * The zod schema is the single source of truth for what is accepted. Unknown keys are rejected (a typo
 * such as `substaus` must never be silently ignored), and the parsed event is normalised into an
 * {@link UpdateIntent}: canonical enum casing, implied status/substatus, UTC closing date.
 */
import { z } from 'zod';
import { AdapterError, type FieldError } from '../core/errors.js';
import { STATUSES, SUBSTATUSES, SUBSTATUSES_BY_STATUS, statusOfSubstatus } from '../core/referral.js';
import type { UpdateEvent, UpdateIntent } from '../core/update.js';
import { REQUEST_HEADERS } from './headers.js';

/** Adapter-side limits on string fields, so a runaway value is refused before anything goes upstream. */
export const LIMITS = {
  referralId: 128,
  eventId: 256,
  name: 512,
  externalReferenceId: 256,
  statusReason: 4000,
  notes: 32000,
} as const;

/** Accepts any casing of the enum values and yields the canonical one ("won" → "Won"). */
function caseInsensitiveEnum<const T extends readonly [string, ...string[]]>(values: T) {
  const byLowerCase = new Map(values.map((value) => [value.toLowerCase(), value]));
  return z.preprocess(
    (input) => (typeof input === 'string' ? (byLowerCase.get(input.toLowerCase()) ?? input) : input),
    z.enum(values),
  );
}

const ISO_CURRENCIES = new Set(Intl.supportedValuesOf('currency'));
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const isoDateTime = z.iso.datetime({ offset: true });

/** `YYYY-MM-DD` → midnight UTC; an ISO 8601 date-time with a zone → the same instant in UTC. */
export function toUtcDateTime(input: string): string | undefined {
  const dateOnly = DATE_ONLY.exec(input);
  if (dateOnly) {
    const [, y, m, d] = dateOnly;
    const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
    // Reject dates that roll over (2026-02-30) rather than moving them to another day.
    if (date.getUTCFullYear() !== Number(y) || date.getUTCMonth() !== Number(m) - 1) return undefined;
    if (date.getUTCDate() !== Number(d)) return undefined;
    return `${input}T00:00:00Z`;
  }
  if (!isoDateTime.safeParse(input).success) return undefined;
  const instant = new Date(input);
  if (Number.isNaN(instant.getTime())) return undefined;
  return instant.toISOString().replace('.000Z', 'Z');
}

/** A lone UTF-16 surrogate (valid in a JSON escape, not valid Unicode text). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Free text up to `max` characters, well-formed Unicode only. */
const text = (max: number, min = 0) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine((value) => !LONE_SURROGATE.test(value), 'must be valid Unicode text (no lone surrogates)');

const referralIdSchema = z
  .string()
  .min(1)
  .max(LIMITS.referralId)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'referralId may contain only letters, digits, ".", "_" and "-"');

/**
 * The request body, field by field (contract v1). The `.meta()` beside each field is what the OpenAPI
 * document and the Power Automate connector show (`title` becomes the field label): it lives here so the
 * documentation cannot describe a field the validation does not have. Metadata never changes validation.
 */
export const updateEventSchema = z
  .strictObject({
    referralId: referralIdSchema.meta({
      title: 'Referral ID',
      description: `The Partner Center referral to update (the id in its URL): letters, digits, ".", "_" and "-", at most ${LIMITS.referralId} characters.`,
      examples: ['3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01'],
    }),
    eventId: text(LIMITS.eventId, 1)
      .optional()
      .meta({
        title: 'Event ID',
        description: `Your id for this change, at most ${LIMITS.eventId} characters (for example the Dataverse row version). A redelivery with the same id gets the first answer again without calling Partner Center; the same id with different content is refused (422 idempotency_key_reused). The webhook-id or Idempotency-Key header, when sent, wins over this field.`,
        examples: ['opportunity-7f1c-rv-1234567'],
      }),
    status: caseInsensitiveEnum(STATUSES)
      .optional()
      .meta({
        title: 'Status',
        description:
          'New, Active or Closed (any casing). Alone, Active means Active/Accepted, New keeps the current New substatus, and Closed is refused (it needs a substatus).',
        examples: ['Active'],
      }),
    substatus: caseInsensitiveEnum(SUBSTATUSES)
      .optional()
      .meta({
        title: 'Substatus',
        description:
          'Pending or Received (New), Accepted (Active), Won, Lost, Declined or Expired (Closed); any casing. Alone it implies its status (Won means Closed/Won); with a status it must belong to it.',
        examples: ['Won'],
      }),
    statusReason: text(LIMITS.statusReason)
      .optional()
      .meta({
        title: 'Status Reason',
        description: `Why the status changed, written to statusReason; at most ${LIMITS.statusReason} characters.`,
        examples: ['Customer signed the contract'],
      }),
    dealValue: z
      .number()
      .nonnegative()
      .optional()
      .meta({
        title: 'Deal Value',
        description: 'The deal value, a JSON number ≥ 0, written to details.dealValue.',
        examples: [125000],
      }),
    currency: z
      .string()
      .transform((code) => code.toUpperCase())
      .refine((code) => ISO_CURRENCIES.has(code), 'currency must be an ISO 4217 code such as EUR or USD')
      .optional()
      .meta({
        title: 'Currency',
        description:
          'ISO 4217 currency code such as EUR or USD, any casing (eur becomes EUR), written to details.currency.',
        examples: ['EUR'],
      }),
    closingDate: z
      .string()
      .refine(
        (value) => toUtcDateTime(value) !== undefined,
        'closingDate must be YYYY-MM-DD or an ISO 8601 date-time with a time zone (Z or ±hh:mm)',
      )
      .optional()
      .meta({
        title: 'Closing Date',
        description:
          'YYYY-MM-DD, or an ISO 8601 date-time with a time zone (Z or ±hh:mm). Written to details.closingDateTime in UTC (2026-12-31 becomes 2026-12-31T00:00:00Z).',
        examples: ['2026-12-31'],
      }),
    notes: text(LIMITS.notes)
      .optional()
      .meta({
        title: 'Notes',
        description: `Free text written to details.notes; at most ${LIMITS.notes} characters. Never logged.`,
        examples: ['Kick-off booked for 12 January'],
      }),
    name: text(LIMITS.name, 1)
      .optional()
      .meta({
        title: 'Name',
        description: `The referral's name, 1 to ${LIMITS.name} characters.`,
        examples: ['Contoso cloud migration'],
      }),
    externalReferenceId: text(LIMITS.externalReferenceId)
      .optional()
      .meta({
        title: 'External Reference ID',
        description: `Your CRM's own id for this deal, written to externalReferenceId; at most ${LIMITS.externalReferenceId} characters.`,
        examples: ['crm-0042'],
      }),
    occurredAt: z.iso
      .datetime({ offset: true, error: 'occurredAt must be an ISO 8601 date-time with a time zone' })
      .optional()
      .meta({
        title: 'Occurred At',
        description:
          'When the change happened in your system: an ISO 8601 date-time with a time zone, at most MAX_CLOCK_SKEW_SECONDS (300) in the future. Ordering is per field: a field that an event with a later occurredAt already set is skipped (listed in superseded); when every field is, the answer is 200 with outcome "stale".',
        examples: ['2026-11-25T09:30:00Z'],
      }),
    dryRun: z
      .boolean()
      .optional()
      .meta({
        title: 'Dry Run',
        description:
          'true: read the referral and check the rules, answer with the changes and the exact PUT body it would send, and write nothing (same as the query ?dryRun=true).',
        examples: [true],
      }),
  })
  .meta({
    title: 'Update Event',
    description:
      'A flat update event (contract v1). Unknown fields are rejected (a typo is a 400, never ignored), and at least one change field is required.',
  });

export type UpdateEventBody = z.output<typeof updateEventSchema>;

/** Where the event came from besides its body. */
export interface EventEnvelope {
  /** `webhook-id`, else `Idempotency-Key` header value (quotes of the structured-field string removed). */
  headerEventId?: string | undefined;
  /** Raw `?dryRun=` query value, if present. */
  dryRunQuery?: string | null | undefined;
  /** How far in the future `occurredAt` may be (`MAX_CLOCK_SKEW_SECONDS`); default 300. */
  maxClockSkewSeconds?: number;
  /** The current time (epoch ms); default `Date.now()`. */
  now?: number;
}

export const DEFAULT_MAX_CLOCK_SKEW_SECONDS = 300;

/** The fields that change the referral: an event must name at least one. */
export const CHANGE_FIELDS = [
  'status',
  'substatus',
  'statusReason',
  'dealValue',
  'currency',
  'closingDate',
  'notes',
  'name',
  'externalReferenceId',
] as const satisfies ReadonlyArray<keyof UpdateEventBody>;

function fieldError(path: ReadonlyArray<PropertyKey>, code: string, message: string): FieldError {
  const segments = path.map(String);
  return {
    pointer: segments.length ? `/${segments.join('/')}` : '',
    field: segments[0] ?? 'body',
    code,
    message,
  };
}

/** Unknown key names are echoed to help with typos, but never at length. */
function clip(key: string): string {
  return key.length > 64 ? `${key.slice(0, 61)}...` : key;
}

function suggest(key: string): string {
  const known = Object.keys(updateEventSchema.shape);
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best ? ` Did you mean "${best}"?` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function zodIssuesToFieldErrors(issues: ReadonlyArray<z.core.$ZodIssue>): FieldError[] {
  return issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) =>
          fieldError([...issue.path, clip(key)], 'unrecognized_key', `Unknown field "${clip(key)}".${suggest(key)}`),
        )
      : [fieldError(issue.path, issue.code, issue.message)],
  );
}

function invalidEvent(errors: FieldError[], referralId?: string): AdapterError {
  const detail =
    errors.length === 1
      ? `The event has 1 invalid field: ${errors[0]?.field}.`
      : `The event has ${errors.length} invalid fields: ${[...new Set(errors.map((e) => e.field))].join(', ')}.`;
  return new AdapterError('invalid_event', detail, {
    extensions: referralId === undefined ? { errors } : { errors, referralId },
  });
}

function parseDryRunQuery(value: string | null | undefined): boolean | FieldError | undefined {
  if (value === null || value === undefined) return undefined;
  if (value === '' || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  return {
    pointer: '',
    field: 'dryRun',
    code: 'invalid_query',
    message: 'The dryRun query parameter must be true or false.',
  };
}

/**
 * Validates a parsed JSON body and normalises it. Throws `invalid_event` with one entry per bad field;
 * nothing is sent upstream for an event that fails here.
 */
export function parseUpdateEvent(body: unknown, envelope: EventEnvelope = {}): UpdateEvent {
  const errors: FieldError[] = [];
  const dryRunQuery = parseDryRunQuery(envelope.dryRunQuery);
  if (typeof dryRunQuery === 'object') errors.push(dryRunQuery);
  if (envelope.headerEventId !== undefined && envelope.headerEventId.length > LIMITS.eventId) {
    errors.push({
      pointer: '',
      field: 'eventId',
      code: 'too_big',
      message: `The event id header (webhook-id or Idempotency-Key) must be at most ${LIMITS.eventId} characters.`,
    });
  }

  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidEvent([...errors, fieldError([], 'invalid_type', 'The body must be a JSON object.')]);
  }
  const parsed = updateEventSchema.safeParse(body);
  if (!parsed.success) errors.push(...zodIssuesToFieldErrors(parsed.error.issues));
  const event = parsed.success ? parsed.data : undefined;
  if (event) {
    if (!CHANGE_FIELDS.some((key) => event[key] !== undefined)) {
      errors.push(
        fieldError([], 'no_change', `The event must name at least one field to change: ${CHANGE_FIELDS.join(', ')}.`),
      );
    }
    if (event.status === 'Closed' && event.substatus === undefined) {
      errors.push(
        fieldError(
          ['status'],
          'substatus_required',
          'status Closed needs a substatus: Won, Lost, Declined or Expired.',
        ),
      );
    }
    if (event.status && event.substatus && !SUBSTATUSES_BY_STATUS[event.status].includes(event.substatus)) {
      errors.push(
        fieldError(
          ['substatus'],
          'substatus_mismatch',
          `substatus ${event.substatus} belongs to status ${statusOfSubstatus(event.substatus)}, not ${event.status}.`,
        ),
      );
    }
  }
  if (event?.occurredAt !== undefined) {
    const skew = envelope.maxClockSkewSeconds ?? DEFAULT_MAX_CLOCK_SKEW_SECONDS;
    if (Date.parse(event.occurredAt) > (envelope.now ?? Date.now()) + skew * 1000) {
      // One wrong clock would otherwise set the fields' time ahead and make every later event stale.
      errors.push(
        fieldError(
          ['occurredAt'],
          'in_future',
          `occurredAt is more than ${skew} seconds in the future (MAX_CLOCK_SKEW_SECONDS); check the sender's clock.`,
        ),
      );
    }
  }
  const referralId = event?.referralId;
  if (errors.length > 0 || !event) throw invalidEvent(errors, referralId);

  return {
    referralId: event.referralId,
    eventId: envelope.headerEventId ?? event.eventId,
    occurredAt: event.occurredAt === undefined ? undefined : new Date(event.occurredAt).toISOString(),
    dryRun: event.dryRun === true || dryRunQuery === true,
    intent: toIntent(event),
  };
}

function toIntent(event: UpdateEventBody): UpdateIntent {
  const intent: UpdateIntent = {};
  const substatus = event.substatus ?? (event.status === 'Active' ? 'Accepted' : undefined);
  const status = event.status ?? (substatus ? statusOfSubstatus(substatus) : undefined);
  if (status) intent.status = status;
  if (substatus) intent.substatus = substatus;
  if (event.statusReason !== undefined) intent.statusReason = event.statusReason;
  if (event.dealValue !== undefined) intent.dealValue = event.dealValue;
  if (event.currency !== undefined) intent.currency = event.currency;
  if (event.closingDate !== undefined) intent.closingDateTime = toUtcDateTime(event.closingDate);
  if (event.notes !== undefined) intent.notes = event.notes;
  if (event.name !== undefined) intent.name = event.name;
  if (event.externalReferenceId !== undefined) intent.externalReferenceId = event.externalReferenceId;
  return intent;
}

/** `Idempotency-Key` is a structured-field string (quoted); accept quoted and bare values. */
export function eventIdFromHeaders(headers: { get(name: string): string | null }): string | undefined {
  const webhookId = headers.get(REQUEST_HEADERS.webhookId);
  if (webhookId) return webhookId;
  const key = headers.get(REQUEST_HEADERS.idempotencyKey);
  if (!key) return undefined;
  const unquoted = /^"(.*)"$/.exec(key.trim());
  return unquoted ? unquoted[1] : key.trim();
}
