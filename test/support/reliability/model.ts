/**
 * The reliability run's model (pure): the fields the adapter writes, and per referral, for every such field,
 * the set of values the referral may hold. A final 200 `updated`/`unchanged` sets the event's fields (those
 * not superseded) to exactly its values; an event whose every delivery ended retryably (its PUT may or may
 * not have landed) adds its values to the sets (counted as unresolved); `stale` and final 4xx change
 * nothing. Ordering is per field (docs/ordering.md; status and substatus are one field): `lastApplied` is,
 * per field, the newest `occurredAt` of an event answered `updated`/`unchanged` that applied it, so a field
 * of an older event must be superseded; `mayBeApplied` adds the times of unresolved events (their claim may
 * have landed), so a field of an event older than that may be superseded.
 */
import { isDeepStrictEqual } from 'node:util';
import type { AppliedWrite } from '../../../dev/sandbox/server.js';
import { EXTERNAL_EDIT_COUNTER } from '../../../dev/sandbox/server.js';
import type { Attempt } from './answers.js';
import type { PlannedEvent } from './plan.js';
import type { Violate } from './violations.js';

// Fields the adapter writes, as the sandbox stores them. Written out here on purpose rather than taken from
// shared/core/referral.ts WRITABLE_PATHS: the model must not inherit a mistake of the code it checks.

export const FIELDS = [
  'status',
  'substatus',
  'statusReason',
  'name',
  'externalReferenceId',
  'dealValue',
  'currency',
  'closingDateTime',
  'notes',
] as const;
export type Field = (typeof FIELDS)[number];

export const PATHS: Record<Field, readonly string[]> = {
  status: ['status'],
  substatus: ['substatus'],
  statusReason: ['statusReason'],
  name: ['name'],
  externalReferenceId: ['externalReferenceId'],
  dealValue: ['details', 'dealValue'],
  currency: ['details', 'currency'],
  closingDateTime: ['details', 'closingDateTime'],
  notes: ['details', 'notes'],
};
export const POINTERS = new Map<string, Field>(FIELDS.map((field) => [`/${PATHS[field].join('/')}`, field]));

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonRecord = Record<string, unknown>;
export type Values = Partial<Record<Field, Json>>;

export const ABSENT = '<absent>';
/** A field value as a comparable key; absent and JSON null stay distinct. */
export const enc = (value: unknown): string => (value === undefined ? ABSENT : JSON.stringify(value));
export const show = (value: unknown): string => (value === undefined ? '(absent)' : JSON.stringify(value));

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function readPath(doc: unknown, path: readonly string[]): unknown {
  let node = doc;
  for (const key of path) {
    if (!isRecord(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

/** The adapter-written fields of a stored document (or of a ledger entry's `fields`). */
export function adapterFields(doc: unknown): Record<Field, unknown> {
  const fields = {} as Record<Field, unknown>;
  for (const field of FIELDS) fields[field] = readPath(doc, PATHS[field]);
  return fields;
}

export function sameFields(a: Record<Field, unknown>, b: Record<Field, unknown>): boolean {
  return FIELDS.every((field) => enc(a[field]) === enc(b[field]));
}

export function fieldsDiff(a: Record<Field, unknown>, b: Record<Field, unknown>): Field[] {
  return FIELDS.filter((field) => enc(a[field]) !== enc(b[field]));
}

// ---------------------------------------------------------------------------------------------------------
// The model of one referral

export interface RefModel {
  id: string;
  possible: Record<Field, Set<string>>;
  /** Which event last set each field (for messages). */
  setBy: Partial<Record<Field, string>>;
  lastApplied: Partial<Record<OrderGroup, number>>;
  mayBeApplied: Partial<Record<OrderGroup, number>>;
}

/** The ordering field of a model field: status and substatus are ordered as one. */
export type OrderGroup = Exclude<Field, 'substatus'>;
export const groupOf = (field: Field): OrderGroup => (field === 'substatus' ? 'status' : field);

/** Fields of the event a later applied event must have superseded, and those one may have. */
export function supersession(model: RefModel, event: PlannedEvent): { must: Set<Field>; may: Set<Field> } {
  const must = new Set<Field>();
  const may = new Set<Field>();
  for (const field of Object.keys(event.values) as Field[]) {
    const group = groupOf(field);
    const certain = model.lastApplied[group];
    const maybe = Math.max(certain ?? Number.NEGATIVE_INFINITY, model.mayBeApplied[group] ?? Number.NEGATIVE_INFINITY);
    if (certain !== undefined && event.occurredAtMs < certain) must.add(field);
    if (event.occurredAtMs < maybe) may.add(field);
  }
  return { must, may };
}

/** The model of a referral as stored at setup: each field holds exactly its stored value. */
export function newModel(id: string, snapshot: unknown): RefModel {
  const fields = adapterFields(snapshot);
  const possible = {} as Record<Field, Set<string>>;
  for (const field of FIELDS) possible[field] = new Set([enc(fields[field])]);
  return { id, possible, setBy: {}, lastApplied: {}, mayBeApplied: {} };
}

/** An event that may or may not have been applied: each field it may have written may hold its value. */
export const union = (model: RefModel, event: PlannedEvent) => {
  const { must } = supersession(model, event);
  for (const [field, value] of Object.entries(event.values) as Array<[Field, Json]>) {
    if (must.has(field)) continue;
    model.possible[field].add(enc(value));
    const group = groupOf(field);
    model.mayBeApplied[group] = Math.max(model.mayBeApplied[group] ?? Number.NEGATIVE_INFINITY, event.occurredAtMs);
  }
};
export const holds = (model: RefModel, field: Field, value: unknown) => model.possible[field].has(enc(value));
export const holdsFrom = (model: RefModel, field: Field, from: unknown) =>
  holds(model, field, from) || (from === null && model.possible[field].has(ABSENT));
export const describeModel = (model: RefModel, field: Field) =>
  `{${[...model.possible[field]].join(' | ')}}${model.setBy[field] ? ` (last set by ${model.setBy[field]})` : ''}`;

/**
 * Checks a fresh (not replayed) final answer against the model before the event, then moves the model.
 * Answers the fields the answer lists as superseded (skipped: not written).
 */
export function checkFreshAnswer(
  model: RefModel,
  event: PlannedEvent,
  answer: Attempt,
  where: string,
  violate: Violate,
): Set<Field> {
  const body = answer.body ?? {};
  const { must, may } = supersession(model, event);
  const named = Object.keys(event.values) as Field[];
  const listed = new Set<Field>();
  for (const entry of Array.isArray(body.superseded) ? body.superseded : []) {
    const field = isRecord(entry) ? POINTERS.get(String(entry.path)) : undefined;
    if (field === undefined || !(field in event.values) || !isRecord(entry)) continue;
    listed.add(field);
    if (!(Date.parse(String(entry.occurredAt)) > event.occurredAtMs)) {
      violate('wrongAnswer', `${where}: superseded ${JSON.stringify(entry)} by an event that is not later`);
    }
  }
  const wrongSkip = [...listed].filter((field) => !may.has(field));
  if (wrongSkip.length > 0) {
    violate(
      'wrongAnswer',
      `${where}: ${wrongSkip.join(', ')} superseded, but no later event applied them (event ${new Date(event.occurredAtMs).toISOString()}): ${answer.text}`,
    );
  }
  const expectStale = named.every((field) => must.has(field));
  if (answer.status === 200 && body.outcome === 'stale') {
    if (!named.every((field) => may.has(field))) {
      violate(
        'wrongAnswer',
        `${where}: stale, but not every field was set by a later event (event ${new Date(event.occurredAtMs).toISOString()}): ${answer.text}`,
      );
    } else if (
      !(Date.parse(String(body.lastAppliedOccurredAt)) > event.occurredAtMs) ||
      !isDeepStrictEqual(body.changes, []) ||
      body.status !== null ||
      body.eTag !== null
    ) {
      violate('wrongAnswer', `${where}: stale answer with wrong details: ${answer.text}`);
    }
    return new Set(named);
  }
  if (expectStale) {
    violate(
      'wrongAnswer',
      `${where}: expected stale (every field set by a later event than ${new Date(event.occurredAtMs).toISOString()}), got ${answer.status} ${answer.text}`,
    );
    return new Set(named);
  }
  if (answer.status === 200) {
    const unlisted = [...must].filter((field) => !listed.has(field));
    if (unlisted.length > 0) {
      violate('wrongAnswer', `${where}: ${unlisted.join(', ')} should be listed as superseded: ${answer.text}`);
    }
  }
  const skipped = answer.status === 200 ? listed : must;
  const fields = (Object.entries(event.values) as Array<[Field, Json]>).filter(([field]) => !skipped.has(field));
  const mayChange = fields.some(([field, value]) => model.possible[field].size > 1 || !holds(model, field, value));
  const mustChange = fields.some(([field, value]) => !holds(model, field, value));
  const canBeClosed = model.possible.status.has(enc('Closed'));
  const mustBeClosed = canBeClosed && model.possible.status.size === 1;
  const code = body.code;
  if (answer.status === 422 && code === 'referral_closed') {
    const current = isRecord(body.current) ? body.current : {};
    if (!canBeClosed || !mayChange || current.status !== 'Closed') {
      violate(
        'wrongAnswer',
        `${where}: referral_closed, but the model has status ${describeModel(model, 'status')} and the event ${mayChange ? 'changes' : 'changes nothing'}: ${answer.text}`,
      );
      return skipped;
    }
    model.possible.status = new Set([enc('Closed')]);
    if (holds(model, 'substatus', current.substatus)) model.possible.substatus = new Set([enc(current.substatus)]);
    else violate('wrongAnswer', `${where}: referral_closed names substatus ${show(current.substatus)}`);
    return new Set(named);
  }
  if (answer.status !== 200 || (body.outcome !== 'updated' && body.outcome !== 'unchanged')) {
    violate('wrongAnswer', `${where}: unexpected final answer ${answer.status} ${answer.text}`);
    return new Set(named);
  }
  const changes = Array.isArray(body.changes) ? body.changes : [];
  if (body.outcome === 'unchanged') {
    if (mustChange || changes.length > 0) {
      const differing = fields.filter(([field, value]) => !holds(model, field, value)).map(([f]) => f);
      violate(
        'wrongAnswer',
        `${where}: unchanged, but the model says ${differing.map((f) => `${f} ${describeModel(model, f)}`).join(', ')} differ: ${answer.text}`,
      );
    }
  } else {
    if (!mayChange || mustBeClosed) {
      violate(
        'wrongAnswer',
        `${where}: updated, but the model says ${mustBeClosed ? 'the referral is Closed' : 'nothing changes'}: ${answer.text}`,
      );
    }
    const seen = new Set<Field>();
    for (const change of changes) {
      const field = isRecord(change) ? POINTERS.get(String(change.path)) : undefined;
      if (
        !isRecord(change) ||
        field === undefined ||
        !(field in event.values) ||
        skipped.has(field) ||
        seen.has(field)
      ) {
        violate('wrongAnswer', `${where}: change ${JSON.stringify(change)} is not one of the event's fields`);
        continue;
      }
      seen.add(field);
      if (enc(change.to) !== enc(event.values[field])) {
        violate(
          'wrongAnswer',
          `${where}: change ${JSON.stringify(change)} but the event asks for ${show(event.values[field])}`,
        );
      }
      if (!holdsFrom(model, field, change.from) || enc(change.from) === enc(change.to)) {
        violate(
          'wrongAnswer',
          `${where}: change ${JSON.stringify(change)} but the model has ${describeModel(model, field)}`,
        );
      }
    }
    for (const [field, value] of fields) {
      if (!seen.has(field) && !holds(model, field, value)) {
        violate(
          'wrongAnswer',
          `${where}: no change reported for ${field}, but the model has ${describeModel(model, field)} and the event asks for ${show(value)}`,
        );
      }
    }
    if (changes.length === 0) violate('wrongAnswer', `${where}: updated with no changes`);
  }
  // Apply: the event's values are now certain; the answer tells the resulting status.
  for (const [field, value] of fields) {
    model.possible[field] = new Set([enc(value)]);
    model.setBy[field] = event.id;
  }
  for (const field of ['status', 'substatus'] as const) {
    if (holds(model, field, body[field])) model.possible[field] = new Set([enc(body[field])]);
    else
      violate(
        'wrongAnswer',
        `${where}: answer says ${field} ${show(body[field])}, model has ${describeModel(model, field)}`,
      );
  }
  for (const [field] of fields) {
    const group = groupOf(field);
    model.lastApplied[group] = Math.max(model.lastApplied[group] ?? Number.NEGATIVE_INFINITY, event.occurredAtMs);
  }
  return skipped;
}

/** A write stored during a step must be the step's event, whole, and nothing else. */
export function checkWriteBelongs(
  event: PlannedEvent,
  write: AppliedWrite,
  before: Record<Field, unknown>,
  where: string,
  violate: Violate,
  /** Fields of the event that were (or may have been) superseded: not written, or left as they were. */
  skipped: ReadonlySet<Field> = new Set(),
): void {
  const stored = adapterFields(write.fields);
  const missing = (Object.entries(event.values) as Array<[Field, Json]>).filter(
    ([field, value]) => !skipped.has(field) && enc(stored[field]) !== enc(value),
  );
  const foreign = fieldsDiff(before, stored).filter((field) => !(field in event.values));
  if (missing.length > 0 || foreign.length > 0) {
    violate(
      'lost',
      `${where}: write seq ${write.seq} (fault ${write.fault ?? 'none'}) is not this event's change: missing ${missing.map(([f, v]) => `${f}=${show(v)} (stored ${show(stored[f])})`).join(', ') || 'nothing'}; other fields changed: ${foreign.map((f) => `${f} ${show(before[f])} → ${show(stored[f])}`).join(', ') || 'none'}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers for "no field lost"

/** A copy without the fields the adapter writes and those the store or the concurrent writer change. */
export function withoutAdapterFields(doc: JsonRecord): JsonRecord {
  const copy = structuredClone(doc);
  delete copy.eTag;
  delete copy.updatedDateTime;
  for (const field of FIELDS) {
    const path = PATHS[field];
    const [first, second] = path;
    if (first === undefined) continue;
    if (second === undefined) delete copy[first];
    else {
      const parent = copy[first];
      if (isRecord(parent)) delete parent[second];
    }
  }
  const attributes = copy.customAttributes;
  if (isRecord(attributes)) delete attributes[EXTERNAL_EDIT_COUNTER];
  return copy;
}

/** JSON pointers where `a` and `b` differ (key order ignored, like JSON equality). */
export function differingPaths(a: unknown, b: unknown, at = ''): string[] {
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((key) =>
      !Object.hasOwn(a, key) || !Object.hasOwn(b, key)
        ? [`${at}/${key} (${Object.hasOwn(a, key) ? 'missing' : 'added'})`]
        : differingPaths(a[key], b[key], `${at}/${key}`),
    );
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((item, i) => differingPaths(item, b[i], `${at}/${i}`));
  }
  return isDeepStrictEqual(a, b) ? [] : [`${at || '/'} (${show(a)} → ${show(b)})`];
}
