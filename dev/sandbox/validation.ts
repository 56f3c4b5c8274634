/**
 * Checks a referral document about to replace the stored one (PUT body, or
 * the result of a PATCH). Each check returns a message for a 400
 * `invalidRequest`, or undefined when the document passes.
 */
import { isPlainObject, jsonEqual } from './json.js';
import { checkTransition } from './rules.js';

/** Fields the service owns (docs/partner-center-api.md#put-full-replace): a write must send them back unchanged. */
const READ_ONLY_FIELDS = ['id', 'engagementId', 'createdDateTime', 'organizationId'] as const;

/**
 * Top-level keys a PATCH may not address at all (docs/partner-center-api.md#patch-json-patch): the service-owned
 * fields above, the ones the service stamps or decorates (`updatedDateTime`, `eTag`, `links`) and OData control
 * information. A PUT must send the first kind back unchanged and may carry the rest (they are not stored); a
 * JSON Patch has no reason to name any of them.
 */
const NOT_PATCHABLE = new Set<string>([...READ_ONLY_FIELDS, 'updatedDateTime', 'eTag', 'links']);

/** Text fields (docs/partner-center-api.md#fields-the-adapter-writes): a new value must be a string. */
const TEXT_PATHS = [['name'], ['externalReferenceId'], ['statusReason'], ['details', 'notes']] as const;

/** ISO 8601 date-time with a time part and a zone, e.g. `2026-12-01T00:00:00Z` (docs/partner-center-api.md#wire-format). */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** ISO 4217: three upper-case letters (docs/partner-center-api.md#fields-the-adapter-writes). */
const CURRENCY = /^[A-Z]{3}$/;

function describe(value: unknown): string {
  if (value === undefined) return 'no value (the field is missing)';
  return `${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value} ${JSON.stringify(value)}`;
}

export function checkNoLinks(doc: Record<string, unknown>): string | undefined {
  // The PUT body must not carry the read-only links (docs/partner-center-api.md#put-full-replace).
  return Object.hasOwn(doc, 'links')
    ? 'Remove the links object from the PUT resource: links is read-only and must not be sent.'
    : undefined;
}

function checkReadOnly(stored: Record<string, unknown>, next: Record<string, unknown>): string | undefined {
  for (const field of READ_ONLY_FIELDS) {
    const before = stored[field];
    const after = next[field];
    if (before === undefined && after === undefined) continue;
    if (!jsonEqual(before, after)) {
      return `'${field}' is read-only and must be sent unchanged: the referral has ${describe(before)}, the body has ${describe(after)}.`;
    }
  }
  return undefined;
}

function checkDetails(next: Record<string, unknown>): string | undefined {
  const details = next.details;
  if (details === undefined || details === null) return undefined;
  if (!isPlainObject(details)) return `'details' must be an object; got ${describe(details)}.`;
  const { dealValue, currency, closingDateTime } = details;
  // dealValue is a decimal: the PATCH doc example's string "10000" is refused on purpose
  // (docs/partner-center-api.md#documentation-quirks).
  if (dealValue !== undefined && dealValue !== null && (typeof dealValue !== 'number' || !Number.isFinite(dealValue))) {
    return `'details.dealValue' must be a JSON number (decimal); got ${describe(dealValue)}.`;
  }
  if (currency !== undefined && currency !== null && (typeof currency !== 'string' || !CURRENCY.test(currency))) {
    return `'details.currency' must be an ISO 4217 code of three upper-case letters; got ${describe(currency)}.`;
  }
  if (
    closingDateTime !== undefined &&
    closingDateTime !== null &&
    (typeof closingDateTime !== 'string' ||
      !DATE_TIME.test(closingDateTime) ||
      Number.isNaN(Date.parse(closingDateTime)))
  ) {
    return `'details.closingDateTime' must be an ISO 8601 UTC date-time such as 2026-12-01T00:00:00Z; got ${describe(closingDateTime)}.`;
  }
  return undefined;
}

/**
 * Refuses a PATCH operation that addresses the whole document or a path the service owns, before anything is
 * applied. The paths are JSON Pointers; the first token names the top-level field.
 */
export function checkPatchPaths(operations: readonly unknown[]): string | undefined {
  for (const [i, op] of operations.entries()) {
    const path = isPlainObject(op) ? op.path : undefined;
    if (typeof path !== 'string') continue; // applyJsonPatch reports it
    if (path === '') {
      return `operation ${i}: path ${JSON.stringify(path)} addresses the whole referral, which can't be patched as one value: a JSON Patch changes fields.`;
    }
    const top = (path.startsWith('/') ? path.slice(1).split('/')[0] : undefined)
      ?.replaceAll('~1', '/')
      .replaceAll('~0', '~');
    if (top !== undefined && (NOT_PATCHABLE.has(top) || top.startsWith('@odata.'))) {
      return `operation ${i}: path ${JSON.stringify(path)} is owned by the service and can't be patched.`;
    }
  }
  return undefined;
}

function valueAt(doc: Record<string, unknown>, path: readonly string[]): unknown {
  let node: unknown = doc;
  for (const key of path) node = isPlainObject(node) && Object.hasOwn(node, key) ? node[key] : undefined;
  return node;
}

/** A text field the write changes must hold a string (or null); a value already stored is not judged again. */
function checkTexts(stored: Record<string, unknown>, next: Record<string, unknown>): string | undefined {
  for (const path of TEXT_PATHS) {
    const after = valueAt(next, path);
    if (after === undefined || after === null || typeof after === 'string') continue;
    if (jsonEqual(after, valueAt(stored, path))) continue;
    return `'${path.join('.')}' must be a string; got ${describe(after)}.`;
  }
  return undefined;
}

function checkShapes(next: Record<string, unknown>): string | undefined {
  // On the wire `target` is an array of { type, id } (docs/partner-center-api.md#the-referral-resource).
  const target = next.target;
  if (target !== undefined && target !== null && !Array.isArray(target)) {
    return `'target' must be an array of { type, id } objects; got ${describe(target)}.`;
  }
  return checkDetails(next);
}

/** All checks for replacing `stored` with `next`, in the order the sandbox reports them. */
export function validateReplacement(
  stored: Record<string, unknown>,
  next: Record<string, unknown>,
): string | undefined {
  const verdict = checkTransition(
    { status: stored.status, substatus: stored.substatus },
    { status: next.status, substatus: next.substatus },
  );
  // A Closed or unknown current state refuses every write, whatever the body holds
  // (docs/partner-center-api.md#status-and-substatus-transitions).
  if (!verdict.allowed && (verdict.reason === 'closed' || verdict.reason === 'unknown-current')) return verdict.message;
  return (
    checkNoLinks(next) ??
    checkReadOnly(stored, next) ??
    checkShapes(next) ??
    checkTexts(stored, next) ??
    (verdict.allowed ? undefined : verdict.message)
  );
}
