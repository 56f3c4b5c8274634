/**
 * The reliability run's model (pure): the fields the adapter writes, and per referral, for every such field,
 * the set of values the referral may hold. A final 200 `updated`/`unchanged` sets the event's fields to
 * exactly its values; an event whose every delivery ended retryably (its PUT may or may not have landed)
 * adds its values to the sets (counted as unresolved); `stale` and final 4xx change nothing. `lastApplied`
 * is the newest `occurredAt` of an event answered `updated`/`unchanged`, which is exactly what the app
 * records for ordering.
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
  lastApplied: number | undefined;
}

/** The model of a referral as stored at setup: each field holds exactly its stored value. */
export function newModel(id: string, snapshot: unknown): RefModel {
  const fields = adapterFields(snapshot);
  const possible = {} as Record<Field, Set<string>>;
  for (const field of FIELDS) possible[field] = new Set([enc(fields[field])]);
  return { id, possible, setBy: {}, lastApplied: undefined };
}

export const union = (model: RefModel, event: PlannedEvent) => {
  for (const [field, value] of Object.entries(event.values) as Array<[Field, Json]>) {
    model.possible[field].add(enc(value));
  }
};
export const holds = (model: RefModel, field: Field, value: unknown) => model.possible[field].has(enc(value));
export const holdsFrom = (model: RefModel, field: Field, from: unknown) =>
  holds(model, field, from) || (from === null && model.possible[field].has(ABSENT));
export const describeModel = (model: RefModel, field: Field) =>
  `{${[...model.possible[field]].join(' | ')}}${model.setBy[field] ? ` (last set by ${model.setBy[field]})` : ''}`;

/** Checks a fresh (not replayed) final answer against the model before the event, then moves the model. */
export function checkFreshAnswer(
  model: RefModel,
  event: PlannedEvent,
  answer: Attempt,
  where: string,
  violate: Violate,
): void {
  const body = answer.body ?? {};
  const fields = Object.entries(event.values) as Array<[Field, Json]>;
  const expectStale = model.lastApplied !== undefined && event.occurredAtMs < model.lastApplied;
  if (answer.status === 200 && body.outcome === 'stale') {
    if (!expectStale) {
      violate(
        'wrongAnswer',
        `${where}: stale, but no newer event was applied (last applied ${model.lastApplied === undefined ? 'none' : new Date(model.lastApplied).toISOString()}, event ${new Date(event.occurredAtMs).toISOString()}): ${answer.text}`,
      );
    } else if (
      Date.parse(String(body.lastAppliedOccurredAt)) !== model.lastApplied ||
      !isDeepStrictEqual(body.changes, []) ||
      body.status !== null ||
      body.eTag !== null
    ) {
      violate('wrongAnswer', `${where}: stale answer with wrong details: ${answer.text}`);
    }
    return;
  }
  if (expectStale) {
    violate(
      'wrongAnswer',
      `${where}: expected stale (occurredAt ${new Date(event.occurredAtMs).toISOString()} < last applied ${new Date(model.lastApplied ?? 0).toISOString()}), got ${answer.status} ${answer.text}`,
    );
    return;
  }
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
      return;
    }
    model.possible.status = new Set([enc('Closed')]);
    if (holds(model, 'substatus', current.substatus)) model.possible.substatus = new Set([enc(current.substatus)]);
    else violate('wrongAnswer', `${where}: referral_closed names substatus ${show(current.substatus)}`);
    return;
  }
  if (answer.status !== 200 || (body.outcome !== 'updated' && body.outcome !== 'unchanged')) {
    violate('wrongAnswer', `${where}: unexpected final answer ${answer.status} ${answer.text}`);
    return;
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
      if (!isRecord(change) || field === undefined || !(field in event.values) || seen.has(field)) {
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
  model.lastApplied = Math.max(model.lastApplied ?? Number.NEGATIVE_INFINITY, event.occurredAtMs);
}

/** A write stored during a step must be the step's event, whole, and nothing else. */
export function checkWriteBelongs(
  event: PlannedEvent,
  write: AppliedWrite,
  before: Record<Field, unknown>,
  where: string,
  violate: Violate,
): void {
  const stored = adapterFields(write.fields);
  const missing = (Object.entries(event.values) as Array<[Field, Json]>).filter(
    ([field, value]) => enc(stored[field]) !== enc(value),
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
