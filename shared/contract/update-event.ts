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
import { formatTarget, lookupStage, MAX_STAGE_LENGTH, type StageMap, type StageTarget } from '../core/stages.js';
import type { StageMapping, UpdateEvent, UpdateIntent } from '../core/update.js';
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

/**
 * Deal values: at most 10^15 (no real deal is larger, and every integer up to it is exact in a double)
 * with at most 4 decimals; a number whose text the double cannot hold exactly is refused, never rounded.
 */
export const DEAL_VALUE_MAX = 1e15;
export const DEAL_VALUE_DECIMALS = 4;

/** Accepts any casing of the enum values and yields the canonical one ("won" → "Won"). */
function caseInsensitiveEnum<const T extends readonly [string, ...string[]]>(values: T) {
  const byLowerCase = new Map(values.map((value) => [value.toLowerCase(), value]));
  return z.preprocess(
    (input) => (typeof input === 'string' ? (byLowerCase.get(input.toLowerCase()) ?? input) : input),
    z.enum(values),
  );
}

const ISO_CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

/**
 * The closing dates the adapter writes: their UTC form must fall in this window, so that every accepted
 * date is a plain four-digit-year date upstream (never `+010000-…` or `-000001-…`).
 */
export const CLOSING_DATE_WINDOW = { from: '1900-01-01T00:00:00Z', to: '9999-12-31T23:59:59.9999999Z' } as const;
const WINDOW_FROM = Date.UTC(1900, 0, 1);
const WINDOW_TO = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
/** RFC 3339 date-time with seconds and a zone; at most 7 fractional digits (what Partner Center keeps). */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,7})?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch of a calendar date and time, or undefined when a part is out of range. */
function utcInstant(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number | undefined {
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return undefined; // rolled over (2026-02-30)
  }
  return date.getTime() + ((hour * 60 + minute) * 60 + second) * 1000;
}

const pad = (value: number, width: number) => String(value).padStart(width, '0');

/**
 * `YYYY-MM-DD` → midnight UTC; an RFC 3339 date-time with a zone → the same instant in UTC, its
 * fractional seconds kept digit for digit. Undefined for anything else, and for an instant whose UTC
 * form falls outside {@link CLOSING_DATE_WINDOW}.
 */
export function toUtcDateTime(input: string): string | undefined {
  const dateOnly = DATE_ONLY.exec(input);
  if (dateOnly) {
    const [, y, m, d] = dateOnly.map(Number) as [number, number, number, number];
    const instant = utcInstant(y, m, d);
    if (instant === undefined || instant < WINDOW_FROM || instant > WINDOW_TO) return undefined;
    return `${input}T00:00:00Z`;
  }
  const parts = DATE_TIME.exec(input);
  if (!parts) return undefined;
  const [, y, mo, d, h, mi, s] = parts.slice(0, 7).map(Number) as number[];
  const fraction = parts[7] ?? '';
  const [zulu, sign, offsetHours, offsetMinutes] = parts.slice(8);
  const local = utcInstant(y ?? 0, mo ?? 0, d ?? 0, h, mi, s);
  if (local === undefined) return undefined;
  let offset = 0;
  if (!zulu) {
    const oh = Number(offsetHours);
    const om = Number(offsetMinutes);
    if (oh > 23 || om > 59) return undefined;
    offset = (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  const instant = local - offset;
  if (instant < WINDOW_FROM || instant > WINDOW_TO) return undefined;
  const utc = new Date(instant);
  const date = `${pad(utc.getUTCFullYear(), 4)}-${pad(utc.getUTCMonth() + 1, 2)}-${pad(utc.getUTCDate(), 2)}`;
  const time = `${pad(utc.getUTCHours(), 2)}:${pad(utc.getUTCMinutes(), 2)}:${pad(utc.getUTCSeconds(), 2)}`;
  return `${date}T${time}${fraction}Z`;
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
      .refine((value) => value.trim() !== '', 'eventId must not be blank')
      .nullish()
      .meta({
        title: 'Event ID',
        description: `Your id for this change, at most ${LIMITS.eventId} characters (for example the Dataverse row version). A redelivery with the same id gets the first answer again without calling Partner Center; the same id with different content is refused (422 idempotency_key_reused). The webhook-id or Idempotency-Key header, when sent, wins over this field.`,
        examples: ['opportunity-7f1c-rv-1234567'],
      }),
    status: caseInsensitiveEnum(STATUSES)
      .nullish()
      .meta({
        title: 'Status',
        description:
          'New, Active or Closed (any casing). Alone, Active means Active/Accepted, New keeps the current New substatus, and Closed is refused (it needs a substatus).',
        examples: ['Active'],
      }),
    substatus: caseInsensitiveEnum(SUBSTATUSES)
      .nullish()
      .meta({
        title: 'Substatus',
        description:
          'Pending or Received (New), Accepted (Active), Won, Lost, Declined or Expired (Closed); any casing. Alone it implies its status (Won means Closed/Won); with a status it must belong to it.',
        examples: ['Won'],
      }),
    stage: text(MAX_STAGE_LENGTH, 1)
      .nullish()
      .meta({
        title: 'Stage',
        description:
          "Your CRM's own sales stage (Closed Won, qualifiedtobuy…), mapped to a status and substatus by the app's STAGE_MAP: a preset for the default stages of Dynamics 365, Salesforce or HubSpot, or a map of your own (docs/stages.md). Any casing, surrounding spaces ignored. Instead of status and substatus, never with them; a stage mapped to null changes no status. The answer's stage says what it mapped to.",
        examples: ['Closed Won'],
      }),
    statusReason: text(LIMITS.statusReason)
      .nullish()
      .meta({
        title: 'Status Reason',
        description: `Why the status changed, written to statusReason; at most ${LIMITS.statusReason} characters.`,
        examples: ['Customer signed the contract'],
      }),
    dealValue: z
      .number()
      .nonnegative()
      .max(DEAL_VALUE_MAX)
      .nullish()
      .meta({
        title: 'Deal Value',
        description: `The deal value, a JSON number from 0 to ${DEAL_VALUE_MAX} (10^15) with at most ${DEAL_VALUE_DECIMALS} decimals, written to details.dealValue exactly as sent.`,
        examples: [125000],
      }),
    currency: z
      .string()
      .regex(/^[A-Za-z]{3}$/, 'currency must be three ASCII letters, an ISO 4217 code such as EUR or USD')
      .transform((code) => code.toUpperCase())
      .refine((code) => ISO_CURRENCIES.has(code), 'currency must be an ISO 4217 code such as EUR or USD')
      .nullish()
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
        'closingDate must be YYYY-MM-DD or an ISO 8601 date-time with seconds and a time zone (Z or ±hh:mm), from 1900-01-01 to 9999-12-31 in UTC',
      )
      .nullish()
      .meta({
        title: 'Closing Date',
        description:
          'YYYY-MM-DD, or an ISO 8601 date-time with seconds and a time zone (Z or ±hh:mm), at most 7 fractional digits. Written to details.closingDateTime in UTC (2026-12-31 becomes 2026-12-31T00:00:00Z), which must fall from 1900-01-01 to 9999-12-31.',
        examples: ['2026-12-31'],
      }),
    notes: text(LIMITS.notes)
      .nullish()
      .meta({
        title: 'Notes',
        description: `Free text written to details.notes; at most ${LIMITS.notes} characters. Never logged.`,
        examples: ['Kick-off booked for 12 January'],
      }),
    name: text(LIMITS.name, 1)
      .nullish()
      .meta({
        title: 'Name',
        description: `The referral's name, 1 to ${LIMITS.name} characters.`,
        examples: ['Contoso cloud migration'],
      }),
    externalReferenceId: text(LIMITS.externalReferenceId)
      .nullish()
      .meta({
        title: 'External Reference ID',
        description: `Your CRM's own id for this deal, written to externalReferenceId; at most ${LIMITS.externalReferenceId} characters.`,
        examples: ['crm-0042'],
      }),
    occurredAt: z.iso
      .datetime({ offset: true, error: 'occurredAt must be an ISO 8601 date-time with a time zone' })
      .nullish()
      .meta({
        title: 'Occurred At',
        description:
          'When the change happened in your system: an ISO 8601 date-time with a time zone, at most MAX_CLOCK_SKEW_SECONDS (300) in the future. Ordering is per field: a field that an event with a later occurredAt already set is skipped (listed in superseded); when every field is, the answer is 200 with outcome "stale".',
        examples: ['2026-11-25T09:30:00Z'],
      }),
    dryRun: z
      .boolean()
      .nullish()
      .meta({
        title: 'Dry Run',
        description:
          'true: read the referral and check the rules, answer with the changes and the exact PUT body it would send, and write nothing (same as the query ?dryRun=true, which signed webhooks refuse). A dry run neither claims nor uses up its event id, and is never stored.',
        examples: [true],
      }),
  })
  .meta({
    title: 'Update Event',
    description:
      'A flat update event (contract v1). Unknown fields are rejected (a typo is a 400, never ignored), and at least one change field is required. null is the same as an absent field (a blank CRM column changes nothing); no field can be cleared.',
  });

export type UpdateEventBody = z.output<typeof updateEventSchema>;

/** Where the event came from besides its body. */
export interface EventEnvelope {
  /** `webhook-id`, else `Idempotency-Key` header value (quotes of the structured-field string removed). */
  headerEventId?: string | undefined;
  /** Raw `?dryRun=` query value, if present. */
  dryRunQuery?: string | null | undefined;
  /**
   * Signatures are required (WEBHOOK_SECRETS): only the signed body says what the delivery does, so a
   * `?dryRun=` query (outside the signature) is refused.
   */
  signed?: boolean;
  /** The source text of a top-level number of the body (http/inbound.ts), to refuse one that does not survive parsing. */
  numberSource?: ((key: string) => string | undefined) | undefined;
  /** How far in the future `occurredAt` may be (`MAX_CLOCK_SKEW_SECONDS`); default 300. */
  maxClockSkewSeconds?: number;
  /** The current time (epoch ms); default `Date.now()`. */
  now?: number;
  /**
   * Errors found outside the body and the event id headers (a bad `?async=`: contract/async.ts), listed in
   * the same 400 as the body's own.
   */
  queryErrors?: readonly FieldError[] | undefined;
  /** STAGE_MAP (docs/stages.md); undefined: no map is configured, and an event's `stage` is a 400. */
  stageMap?: StageMap | undefined;
}

export const DEFAULT_MAX_CLOCK_SKEW_SECONDS = 300;

/** The fields that change the referral: an event must name at least one. */
export const CHANGE_FIELDS = [
  'stage',
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
    pointer: segments.length ? `/${segments.map(pointerSegment).join('/')}` : '',
    field: segments[0] ?? 'body',
    code,
    message,
  };
}

/** At most this many entries in a 400's `errors`; the rest are counted, not listed. */
export const MAX_FIELD_ERRORS = 25;
const MAX_ECHOED_KEY = 64;

/**
 * An unknown key as it is echoed back to help with typos: never at length (cut at a whole character),
 * and with lone surrogates, control and format characters (bidi overrides…) written as `\u{XXXX}`.
 */
export function echoKey(key: string): string {
  const characters = key.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]|[\s\S]/g) ?? [];
  const shown = characters.length > MAX_ECHOED_KEY ? [...characters.slice(0, MAX_ECHOED_KEY - 3), '...'] : characters;
  return shown.map((c) => (UNPRINTABLE.test(c) ? `\\u{${hex(c)}}` : c)).join('');
}

/** One character that must not be echoed as it is: a lone surrogate, a control or format character, a line separator. */
const UNPRINTABLE = /^(?:[\uD800-\uDFFF]|[\p{Cc}\p{Cf}\p{Zl}\p{Zp}])$/u;
const hex = (c: string) => (c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');

/** A JSON pointer segment (RFC 6901): `~` → `~0`, `/` → `~1`. */
const pointerSegment = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');

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

/** The field errors of zod's issues; an unknown key's entry is built only when it will be listed. */
function zodIssuesToFieldErrors(issues: ReadonlyArray<z.core.$ZodIssue>): Array<() => FieldError> {
  return issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => () => {
          const shown = echoKey(key);
          return fieldError([...issue.path, shown], 'unrecognized_key', `Unknown field "${shown}".${suggest(key)}`);
        })
      : [() => fieldError(issue.path, issue.code, issue.message)],
  );
}

/** The 400: the first {@link MAX_FIELD_ERRORS} field errors, and how many more there are. */
function invalidEvent(all: Array<FieldError | (() => FieldError)>, referralId?: string): AdapterError {
  const listed = all.slice(0, MAX_FIELD_ERRORS).map((entry) => (typeof entry === 'function' ? entry() : entry));
  const more = all.length - listed.length;
  const fields = [...new Set(listed.map((e) => e.field))].join(', ');
  const detail =
    all.length === 1
      ? `The event has 1 invalid field: ${listed[0]?.field}.`
      : `The event has ${all.length} invalid fields: ${fields}${more > 0 ? ` and ${more} more` : ''}.`;
  const errors =
    more > 0
      ? [
          ...listed,
          fieldError([], 'too_many_errors', `${more} more invalid fields are not listed; fix these and send again.`),
        ]
      : listed;
  return new AdapterError('invalid_event', detail, {
    extensions: referralId === undefined ? { errors } : { errors, referralId },
  });
}

/** A decimal number's text as digits × 10^exponent, without leading or trailing zeros (`''` for zero). */
function decimal(text: string): { digits: string; exponent: number } | undefined {
  const parts = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!parts) return undefined;
  const [, whole = '', fraction = '', power = '0'] = parts;
  let digits = `${whole}${fraction}`.replace(/^0+/, '');
  let exponent = Number(power) - fraction.length;
  const trailing = digits.length - digits.replace(/0+$/, '').length;
  digits = digits.slice(0, digits.length - trailing);
  exponent += trailing;
  return digits === '' ? { digits, exponent: 0 } : { digits, exponent };
}

/** The deal value's own checks beyond the schema: exactly what was sent, at most 4 decimals. */
function dealValueErrors(value: number, source: string | undefined): FieldError[] {
  const written = decimal(String(value));
  const sent = source === undefined ? written : decimal(source);
  if (!written || !sent || sent.digits !== written.digits || sent.exponent !== written.exponent) {
    return [
      fieldError(
        ['dealValue'],
        'inexact_number',
        'dealValue cannot be written exactly as sent (too many significant digits, or too small): send it with fewer digits.',
      ),
    ];
  }
  if (-written.exponent > DEAL_VALUE_DECIMALS) {
    return [fieldError(['dealValue'], 'too_precise', `dealValue must have at most ${DEAL_VALUE_DECIMALS} decimals.`)];
  }
  return [];
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
  const errors: Array<FieldError | (() => FieldError)> = [];
  const dryRunQuery = parseDryRunQuery(envelope.dryRunQuery);
  if (typeof dryRunQuery === 'object') errors.push(dryRunQuery);
  if (envelope.queryErrors) errors.push(...envelope.queryErrors);
  if (envelope.signed && envelope.dryRunQuery !== null && envelope.dryRunQuery !== undefined) {
    errors.push({
      pointer: '',
      field: 'dryRun',
      code: 'unsigned_query',
      message:
        'Signed webhooks are required, and the query is not signed: ask for a dry run in the body ("dryRun": true), not with ?dryRun=.',
    });
  }
  const { headerEventId } = envelope;
  if (headerEventId !== undefined && headerEventId.length > LIMITS.eventId) {
    errors.push({
      pointer: '',
      field: 'eventId',
      code: 'too_big',
      message: `The event id header (webhook-id or Idempotency-Key) must be at most ${LIMITS.eventId} characters.`,
    });
  }
  if (headerEventId !== undefined && headerEventId.trim() === '') {
    errors.push({
      pointer: '',
      field: 'eventId',
      code: 'too_small',
      message: 'The event id header (webhook-id or Idempotency-Key) must not be empty or blank.',
    });
  }

  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidEvent([...errors, fieldError([], 'invalid_type', 'The body must be a JSON object.')]);
  }
  const parsed = updateEventSchema.safeParse(body);
  if (!parsed.success) errors.push(...zodIssuesToFieldErrors(parsed.error.issues));
  const event = parsed.success ? parsed.data : undefined;
  let stage: { mapping: StageMapping; target: StageTarget } | undefined;
  if (event) {
    if (event.dealValue != null) errors.push(...dealValueErrors(event.dealValue, envelope.numberSource?.('dealValue')));
    // null is "not given" (a blank CRM column): only a value names a field to change.
    if (!CHANGE_FIELDS.some((key) => event[key] != null)) {
      errors.push(
        fieldError(
          [],
          'no_change',
          `The event must name at least one field to change (null counts as not given): ${CHANGE_FIELDS.join(', ')}.`,
        ),
      );
    }
    if (event.stage != null) {
      const mapped = mapStage(event.stage, event, envelope.stageMap);
      if ('error' in mapped) errors.push(mapped.error);
      else stage = mapped;
    }
    if (event.status === 'Closed' && event.substatus == null) {
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
  if (event?.occurredAt != null) {
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

  const intent = toIntent(event);
  // The stage's target, exactly as if the event had sent it as status and substatus (null: no status change).
  if (stage?.target) {
    intent.status = stage.target.status;
    if (stage.target.substatus) intent.substatus = stage.target.substatus;
  }
  return {
    referralId: event.referralId,
    eventId: headerEventId ?? event.eventId ?? undefined,
    occurredAt: event.occurredAt == null ? undefined : new Date(event.occurredAt).toISOString(),
    dryRun: event.dryRun === true || dryRunQuery === true,
    intent,
    ...(stage ? { stage: stage.mapping } : {}),
  };
}

/** At most this many configured stages are listed in the 400 of an unknown one. */
const MAX_LISTED_STAGES = 50;

/**
 * The event's `stage` through STAGE_MAP: its mapping, or the field error (no map configured, a stage the map
 * does not have, or a stage together with status or substatus, which would say the same thing twice).
 */
function mapStage(
  name: string,
  event: UpdateEventBody,
  map: StageMap | undefined,
): { mapping: StageMapping; target: StageTarget } | { error: FieldError } {
  if (event.status != null || event.substatus != null) {
    return {
      error: fieldError(
        ['stage'],
        'stage_ambiguous',
        'stage maps to a status and substatus: send either stage or status/substatus, not both.',
      ),
    };
  }
  if (!map) {
    return {
      error: fieldError(
        ['stage'],
        'stage_map_missing',
        'stage needs a stage map, and the app has none: set the app setting STAGE_MAP to dynamics365, salesforce, hubspot or a JSON object such as {"Closed Won": "Closed/Won"} (docs/stages.md), or send status and substatus instead.',
      ),
    };
  }
  const entry = lookupStage(map, name);
  if (!entry) {
    const names = map.entries.map((e) => e.stage);
    const listed = names.slice(0, MAX_LISTED_STAGES).join(', ');
    const more = names.length > MAX_LISTED_STAGES ? ` and ${names.length - MAX_LISTED_STAGES} more` : '';
    return {
      error: fieldError(
        ['stage'],
        'unknown_stage',
        `stage is not one of the stages of STAGE_MAP (${map.source}; case and surrounding spaces are ignored): ${listed}${more}.`,
      ),
    };
  }
  return { mapping: { name: entry.stage, target: formatTarget(entry.target) }, target: entry.target };
}

function toIntent(event: UpdateEventBody): UpdateIntent {
  // null and absent are the same: the field is not given, and changes nothing.
  const intent: UpdateIntent = {};
  const substatus = event.substatus ?? (event.status === 'Active' ? 'Accepted' : undefined);
  const status = event.status ?? (substatus ? statusOfSubstatus(substatus) : undefined);
  if (status) intent.status = status;
  if (substatus) intent.substatus = substatus;
  if (event.statusReason != null) intent.statusReason = event.statusReason;
  // + 0 turns -0 into 0.
  if (event.dealValue != null) intent.dealValue = event.dealValue + 0;
  if (event.currency != null) intent.currency = event.currency;
  if (event.closingDate != null) intent.closingDateTime = toUtcDateTime(event.closingDate);
  if (event.notes != null) intent.notes = event.notes;
  if (event.name != null) intent.name = event.name;
  if (event.externalReferenceId != null) intent.externalReferenceId = event.externalReferenceId;
  return intent;
}

/**
 * `Idempotency-Key` is a structured-field string (quoted); accept quoted and bare values. A header that is
 * present but empty gives `''` (refused by {@link parseUpdateEvent}), never "no id".
 */
export function eventIdFromHeaders(headers: { get(name: string): string | null }): string | undefined {
  const webhookId = headers.get(REQUEST_HEADERS.webhookId);
  if (webhookId !== null) return webhookId;
  const key = headers.get(REQUEST_HEADERS.idempotencyKey);
  if (key === null) return undefined;
  const unquoted = /^"(.*)"$/.exec(key.trim());
  return unquoted ? unquoted[1] : key.trim();
}
