/**
 * Merge and diff: pure functions, no I/O.
 *
 * The same changes are written either as a `PUT` body or as a JSON Patch document for `PATCH`
 * (`PARTNER_CENTER_WRITE_METHOD`, docs/partner-center-api.md#patch-json-patch): only the changed paths, each a
 * `replace` where the referral as read has it and an `add` where it does not.
 *
 * `PUT` replaces the whole referral, so the body is the resource exactly as Partner Center returned it,
 * with only the requested paths set. Every other key, known to this code or not, nested or top-level,
 * goes back unchanged (docs/partner-center-api.md#put-full-replace). Only the read-only `links` object and top-level
 * `@odata.*` annotations are removed.
 */

import { AdapterError } from './errors.js';
import {
  isJsonObject,
  isReadOnlyAnnotation,
  type JsonObject,
  type JsonValue,
  pointerOf,
  type ReferralState,
  readPath,
  WRITABLE_PATHS,
  type WritableField,
} from './referral.js';
import type { UpdateIntent } from './update.js';

/** One changed field: `path` is a JSON pointer into the referral. */
export interface Change {
  path: string;
  from: JsonValue;
  to: JsonValue;
}

/** The values the referral should hold after the update, by writable field. */
export type DesiredValues = Partial<Record<WritableField, JsonValue>>;

export function desiredValues(intent: UpdateIntent, requested: Partial<ReferralState>): DesiredValues {
  const { status: _s, substatus: _ss, ...rest } = intent;
  const desired: DesiredValues = {};
  for (const [field, value] of Object.entries(rest) as Array<[WritableField, JsonValue | undefined]>) {
    if (value !== undefined) desired[field] = value;
  }
  if (requested.status) desired.status = requested.status;
  if (requested.substatus) desired.substatus = requested.substatus;
  return desired;
}

/** Two values are the same for the field: date-times compare as instants, so 7-digit fractions are kept. */
function sameValue(field: WritableField, current: JsonValue | undefined, desired: JsonValue): boolean {
  if (current === desired) return true;
  if (field === 'closingDateTime' && typeof current === 'string' && typeof desired === 'string') {
    const a = Date.parse(current);
    return !Number.isNaN(a) && a === Date.parse(desired);
  }
  return false;
}

/** The changes needed to make `referral` hold the desired values; empty when it already does. */
export function diff(referralId: string, referral: JsonObject, desired: DesiredValues): Change[] {
  const details = referral.details;
  if (details !== undefined && details !== null && !isJsonObject(details)) {
    throw new AdapterError(
      'unexpected_referral',
      `Referral ${referralId} has a "details" value that is not an object; the adapter will not overwrite it.`,
      { extensions: { referralId } },
    );
  }
  const changes: Change[] = [];
  for (const [field, to] of Object.entries(desired) as Array<[WritableField, JsonValue]>) {
    const path = WRITABLE_PATHS[field];
    const from = readPath(referral, path);
    if (!sameValue(field, from, to)) changes.push({ path: pointerOf(field), from: from ?? null, to });
  }
  return changes;
}

/**
 * The PUT body: the referral without `links`/`@odata.*`, with the changes applied. Neither the referral nor
 * the body is mutated afterwards (both are only read and serialized), so the body is a copy only where it
 * differs: a new top-level object, and a new object on the path of each change (`details`); every other value
 * is the referral's own, shared. Copying the whole referral for every plan (and for every event of a batch)
 * was most of the cost of planning (docs/performance-analysis.md).
 */
export function buildPutBody(referral: JsonObject, changes: readonly Change[]): JsonObject {
  const body = copyOwn(referral, true);
  /** The objects of `body` made here: written in place; any other object on a change's path is copied first. */
  const fresh = new Set<JsonObject>([body]);
  for (const change of changes) {
    const keys = change.path.slice(1).split('/');
    const last = keys.pop() as string;
    let node = body;
    for (const key of keys) {
      const child = Object.hasOwn(node, key) ? node[key] : undefined;
      if (!isJsonObject(child) || !fresh.has(child)) {
        const copy = isJsonObject(child) ? copyOwn(child, false) : {};
        fresh.add(copy);
        defineValue(node, key, copy);
      }
      node = node[key] as JsonObject;
    }
    defineValue(node, last, change.to);
  }
  return body;
}

/** One JSON Patch (RFC 6902) operation: the only two Partner Center supports (docs/partner-center-api.md#patch-json-patch). */
export interface PatchOperation {
  op: 'replace' | 'add';
  path: string;
  value: JsonValue;
}

/**
 * The JSON Patch document that makes `referral` (as read) hold `changes`: one operation per changed path, in the
 * order first changed, with the value the PUT body would give it (a later change of a path overwrites an earlier
 * one, as in a batch). `replace` where the path exists in the read referral, `add` where it is absent. A nested
 * path whose parent object is missing or `null` (a referral without `details`) becomes one operation on the
 * parent, holding only the changed keys: JSON Patch cannot add beneath a parent that does not exist.
 */
export function patchOperations(
  referral: JsonObject,
  changes: readonly Change[],
  body: JsonObject = buildPutBody(referral, changes),
): PatchOperation[] {
  const operations: PatchOperation[] = [];
  const seen = new Set<string>();
  for (const change of changes) {
    const keys = change.path.slice(1).split('/');
    const whole = keys.length > 1 && !isJsonObject(readPath(referral, keys.slice(0, 1)));
    const target = whole ? keys.slice(0, 1) : keys;
    const path = `/${target.join('/')}`;
    if (seen.has(path)) continue;
    seen.add(path);
    const exists = readPath(referral, target) !== undefined;
    operations.push({ op: exists ? 'replace' : 'add', path, value: readPath(body, target) ?? null });
  }
  return operations;
}

/**
 * `write` (a planned write holding its PUT `body`) with `operations`, the same write as JSON Patch, built on first
 * use only: under the default `PUT` nothing reads it, and a batch plans one write per event before its own.
 * The property is enumerable (it reads like a plain field), so spreading the write builds it.
 */
export function withPatchOperations<T extends { body: JsonObject }>(
  write: T,
  referral: JsonObject,
  changes: readonly Change[],
): T & { readonly operations: PatchOperation[] } {
  let operations: PatchOperation[] | undefined;
  return Object.defineProperty(write, 'operations', {
    enumerable: true,
    get: () => {
      operations ??= patchOperations(referral, changes, write.body);
      return operations;
    },
  }) as T & { readonly operations: PatchOperation[] };
}

/** A shallow copy of `source`'s own keys (less the read-only annotations at the top level). */
function copyOwn(source: JsonObject, topLevel: boolean): JsonObject {
  const copy: JsonObject = {};
  for (const key of Object.keys(source)) {
    if (topLevel && isReadOnlyAnnotation(key)) continue;
    const value = source[key] as JsonValue;
    if (key === '__proto__') defineValue(copy, key, value);
    else copy[key] = value;
  }
  return copy;
}

/** Defines an own property, so a key such as `__proto__` from upstream JSON stays data, never a prototype. */
function defineValue(target: JsonObject, key: string, value: JsonValue): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
