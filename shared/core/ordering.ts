/**
 * Ordering by `occurredAt`, per field: pure functions, no I/O (the protocol and its argument:
 * docs/ordering.md).
 *
 * The ordering record of a referral holds, per field the contract writes (status and substatus are one
 * field), the `occurredAt` of the latest event that claimed it, and, while that event's write to Partner
 * Center may be in flight, its pending claim: who, a digest of the value it writes, the time it replaced
 * (`prev`) and when the claim lapses (`until`). The use case reads the record with its version, calls
 * {@link decideOrder} after every read of the referral, writes {@link claimFields}' record conditionally
 * (optimistic concurrency), writes to Partner Center, then {@link confirmClaims} or {@link rollbackClaims}.
 */
import {
  isJsonObject,
  type JsonObject,
  type JsonValue,
  readPath,
  WRITABLE_PATHS,
  type WritableField,
} from './referral.js';
import type { UpdateIntent } from './update.js';

/** The fields ordered independently; `status` stands for the status and substatus pair. */
export const ORDERED_FIELDS = [
  'status',
  'statusReason',
  'name',
  'externalReferenceId',
  'dealValue',
  'currency',
  'closingDateTime',
  'notes',
] as const;
export type OrderedField = (typeof ORDERED_FIELDS)[number];

/** A claim whose write may be in flight. */
export interface PendingClaim {
  /** The claiming event's claim id (one per processing of an event). */
  by: string;
  /** {@link valueKey} of the value it writes. */
  key: string;
  /** The field's `at` before the claim, restored by a rollback; absent when there was none. */
  prev?: string;
  /** Epoch ms after which the claim's write can no longer land (its event's deadline plus a margin). */
  until: number;
}

export interface FieldEntry {
  /** ISO `occurredAt` of the latest event that claimed the field. */
  at: string;
  pending?: PendingClaim;
}

export type OrderingRecord = Partial<Record<OrderedField, FieldEntry>>;

/** The JSON pointers of an ordered field (the status field has two). */
export function pointersOf(field: OrderedField): string[] {
  if (field === 'status') return ['/status', '/substatus'];
  return [`/${WRITABLE_PATHS[field].join('/')}`];
}

/** The ordered fields an intent names. */
export function fieldsOf(intent: UpdateIntent): OrderedField[] {
  return ORDERED_FIELDS.filter((field) =>
    field === 'status' ? intent.status !== undefined || intent.substatus !== undefined : intent[field] !== undefined,
  );
}

/** The intent without the given fields. */
export function withoutFields(intent: UpdateIntent, fields: readonly OrderedField[]): UpdateIntent {
  const rest: UpdateIntent = { ...intent };
  for (const field of fields) {
    if (field === 'status') {
      delete rest.status;
      delete rest.substatus;
    } else delete rest[field];
  }
  return rest;
}

/** A 53-bit string hash (cyrb53): the record keeps a digest of the value, never the value itself. */
function hash(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

/** A digest of a field's value, equal for values the merge treats as the same (closing dates as instants). */
export function valueKey(field: OrderedField, value: JsonValue | undefined): string {
  if (field === 'closingDateTime' && typeof value === 'string' && !Number.isNaN(Date.parse(value))) {
    return hash(`t:${Date.parse(value)}`);
  }
  return hash(JSON.stringify(value ?? null));
}

/** The digest of the value a referral holds for the field. */
export function currentKey(field: OrderedField, referral: JsonObject): string {
  if (field === 'status') return valueKey(field, [referral.status ?? null, referral.substatus ?? null]);
  return valueKey(field, readPath(referral, WRITABLE_PATHS[field]));
}

/** The digest of the value an event writes, from the merge's desired values. */
export function desiredKey(field: OrderedField, desired: Partial<Record<WritableField, JsonValue>>): string {
  if (field === 'status') return valueKey(field, [desired.status ?? null, desired.substatus ?? null]);
  return valueKey(field, desired[field]);
}

/**
 * Settles lapsed claims against a read of the referral that started after they lapsed (`readStartedAt`):
 * a claim whose value the referral holds landed (confirmed); any other never will (rolled back).
 */
export function settleLapsed(record: OrderingRecord, referral: JsonObject, readStartedAt: number): OrderingRecord {
  const settled: OrderingRecord = {};
  for (const field of ORDERED_FIELDS) {
    const entry = record[field];
    if (!entry) continue;
    const { pending } = entry;
    if (!pending || pending.until >= readStartedAt) settled[field] = entry;
    else if (currentKey(field, referral) === pending.key) settled[field] = { at: entry.at };
    else if (pending.prev !== undefined) settled[field] = { at: pending.prev };
  }
  return settled;
}

export interface Superseded {
  field: OrderedField;
  /** When the later event that set the field occurred. */
  occurredAt: string;
}

export interface OrderDecision {
  /** Fields this event may write. */
  apply: OrderedField[];
  /** Fields set by a later event (confirmed): skipped. */
  superseded: Superseded[];
  /** Fields another event holds a live claim on: wait and decide again. */
  waitFor: OrderedField[];
}

/**
 * The decision for one event (`occurredAt`, the fields it names) against the record. Ties (the same
 * `occurredAt`) apply: a redelivery is not stale. A field under another event's live claim is waited
 * for, whatever the times, so that no event is answered by a claim that may still be rolled back.
 */
export function decideOrder(
  record: OrderingRecord,
  occurredAt: string,
  fields: readonly OrderedField[],
  claimId: string,
): OrderDecision {
  const t = Date.parse(occurredAt);
  const decision: OrderDecision = { apply: [], superseded: [], waitFor: [] };
  for (const field of fields) {
    const entry = record[field];
    if (entry?.pending && entry.pending.by !== claimId) decision.waitFor.push(field);
    else if (entry && Date.parse(entry.at) > t) decision.superseded.push({ field, occurredAt: entry.at });
    else decision.apply.push(field);
  }
  return decision;
}

/** Fields of the event that confirmed later events have set, from the record alone (before any read). */
export function supersededBeforeRead(
  record: OrderingRecord,
  occurredAt: string,
  fields: readonly OrderedField[],
): Superseded[] {
  const t = Date.parse(occurredAt);
  return fields.flatMap((field) => {
    const entry = record[field];
    return entry && !entry.pending && Date.parse(entry.at) > t ? [{ field, occurredAt: entry.at }] : [];
  });
}

/**
 * The record with the event's claims: each applied field gets `at = occurredAt`; a field in `writes`
 * (field → digest of the value the PUT leaves in it) is pending until confirmed, any other is confirmed
 * at once (nothing is written). A field this claim already held keeps its original `prev` and `until`.
 */
export function claimFields(
  record: OrderingRecord,
  occurredAt: string,
  apply: readonly OrderedField[],
  writes: ReadonlyMap<OrderedField, string>,
  claim: { by: string; until: number },
): OrderingRecord {
  const applied = new Map(apply.map((field) => [field, { at: occurredAt, by: claim.by }] as const));
  return claimFieldsAt(record, applied, writes, { owner: claim.by, until: claim.until });
}

/**
 * Who a claim belongs to: one claim id (one event), or the claim ids of a batch's events (core/plan-batch.ts), each
 * field claimed by the event whose value the batch's PUT leaves in it, so that a redelivery of that event can take
 * its claim over as it would its own (docs/ordering.md#batches).
 */
export type ClaimOwner = string | ReadonlySet<string>;

/** Whether the pending claim `by` is one of `owner`'s. */
export function owns(owner: ClaimOwner, by: string | undefined): boolean {
  return by !== undefined && (typeof owner === 'string' ? by === owner : owner.has(by));
}

/**
 * {@link claimFields} with a time and a claim id per field: the claim of a batch, whose fields were applied by
 * events of different times; each gets the time and the claim id of the latest event of the batch that applied it.
 * A field any of `owner`'s ids already held keeps its original `prev` and at least its `until`.
 */
export function claimFieldsAt(
  record: OrderingRecord,
  applied: ReadonlyMap<OrderedField, { at: string; by: string }>,
  writes: ReadonlyMap<OrderedField, string>,
  claim: { owner: ClaimOwner; until: number },
): OrderingRecord {
  const next: OrderingRecord = { ...record };
  for (const [field, { at, by }] of applied) {
    const entry = record[field];
    const key = writes.get(field);
    if (key === undefined) {
      next[field] = { at };
      continue;
    }
    // Taking over a claim of its own (a redelivery, or a batch's next attempt): its original `prev`, and at least
    // its `until`, since the earlier attempt's PUT may still land until then.
    const own = owns(claim.owner, entry?.pending?.by) ? entry?.pending : undefined;
    const prev = own ? own.prev : entry?.at;
    const until = Math.max(claim.until, own?.until ?? 0);
    next[field] = {
      at,
      pending: { by, key, until, ...(prev === undefined ? {} : { prev }) },
    };
  }
  return next;
}

/** The write landed: this claim's pending entries become confirmed. */
export function confirmClaims(record: OrderingRecord, claimId: string): OrderingRecord {
  const next: OrderingRecord = {};
  for (const field of ORDERED_FIELDS) {
    const entry = record[field];
    if (entry) next[field] = entry.pending?.by === claimId ? { at: entry.at } : entry;
  }
  return next;
}

/** The write failed for good (and none of it can land): this claim's fields get their previous time back. */
export function rollbackClaims(record: OrderingRecord, owner: ClaimOwner): OrderingRecord {
  const next: OrderingRecord = {};
  for (const field of ORDERED_FIELDS) {
    const entry = record[field];
    if (!entry) continue;
    if (!entry.pending || !owns(owner, entry.pending.by)) next[field] = entry;
    else if (entry.pending.prev !== undefined) next[field] = { at: entry.pending.prev };
  }
  return next;
}

/**
 * Settles a batch's pending entries once its write landed (or nothing was left to write): each field of `landed`
 * (field → the time the landed plan claimed it at) is confirmed at that time, whatever Partner Center's answer
 * echoed (it may normalise a value); any other field of this claim, claimed by an earlier attempt of the batch,
 * gets its previous time back, unless that attempt's `PUT` may still land (`keepUnlanded`): then it is left to
 * lapse and be settled by a later read, as one event's would be.
 */
export function settleBatchClaims(
  record: OrderingRecord,
  owner: ClaimOwner,
  landed: ReadonlyMap<OrderedField, { at: string }>,
  keepUnlanded: boolean,
): OrderingRecord {
  const next: OrderingRecord = {};
  for (const field of ORDERED_FIELDS) {
    const entry = record[field];
    if (!entry) continue;
    const { pending } = entry;
    const at = landed.get(field)?.at;
    if (!pending || !owns(owner, pending.by) || (at === undefined && keepUnlanded)) next[field] = entry;
    else if (at !== undefined) next[field] = { at };
    else if (pending.prev !== undefined) next[field] = { at: pending.prev };
  }
  return next;
}

/** Whether the claim holds any pending entry in the record. */
export function holdsClaims(record: OrderingRecord, owner: ClaimOwner): boolean {
  return ORDERED_FIELDS.some((field) => owns(owner, record[field]?.pending?.by));
}

/** The latest time among the entries (for `lastAppliedOccurredAt`). */
export function latestOf(superseded: readonly Superseded[]): string | undefined {
  let latest: string | undefined;
  for (const { occurredAt } of superseded) {
    if (latest === undefined || Date.parse(occurredAt) > Date.parse(latest)) latest = occurredAt;
  }
  return latest;
}

/** Reads a stored record leniently: anything malformed is dropped (a legacy per-referral time applies to every field). */
export function parseOrderingRecord(json: string | undefined, legacyOccurredAt?: string): OrderingRecord {
  const record: OrderingRecord = {};
  if (json === undefined) {
    if (legacyOccurredAt !== undefined && !Number.isNaN(Date.parse(legacyOccurredAt))) {
      for (const field of ORDERED_FIELDS) record[field] = { at: legacyOccurredAt };
    }
    return record;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return record;
  }
  if (!isJsonObject(parsed)) return record;
  for (const field of ORDERED_FIELDS) {
    const entry = parsed[field];
    if (!isJsonObject(entry) || typeof entry.at !== 'string') continue;
    const p = entry.pending;
    if (isJsonObject(p) && typeof p.by === 'string' && typeof p.key === 'string' && typeof p.until === 'number') {
      const prev = typeof p.prev === 'string' ? { prev: p.prev } : {};
      record[field] = { at: entry.at, pending: { by: p.by, key: p.key, until: p.until, ...prev } };
    } else record[field] = { at: entry.at };
  }
  return record;
}
