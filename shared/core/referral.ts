/**
 * The Partner Center referral as this adapter sees it.
 *
 * A referral is kept as the raw JSON object Partner Center returned: the adapter never parses it into a
 * typed model, because `PUT` is a full replace and any key a model did not know would be erased
 * (docs/partner-center-api.md#the-referral-resource). Only the handful of keys the adapter writes are named here.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export const STATUSES = ['New', 'Active', 'Closed'] as const;
export type Status = (typeof STATUSES)[number];

export const SUBSTATUSES = ['Pending', 'Received', 'Accepted', 'Won', 'Lost', 'Declined', 'Expired'] as const;
export type Substatus = (typeof SUBSTATUSES)[number];

/** Substatuses valid for each status: the "Allowed Substatus" column of the transition table. */
export const SUBSTATUSES_BY_STATUS: Readonly<Record<Status, readonly Substatus[]>> = {
  New: ['Pending', 'Received'],
  Active: ['Accepted'],
  Closed: ['Won', 'Lost', 'Declined', 'Expired'],
};

/** The status a substatus belongs to (each substatus belongs to exactly one). */
export function statusOfSubstatus(substatus: Substatus): Status {
  for (const status of STATUSES) {
    if (SUBSTATUSES_BY_STATUS[status].includes(substatus)) return status;
  }
  throw new Error(`unreachable: substatus ${substatus} has no status`);
}

export function isStatus(value: unknown): value is Status {
  return typeof value === 'string' && (STATUSES as readonly string[]).includes(value);
}

export function isSubstatus(value: unknown): value is Substatus {
  return typeof value === 'string' && (SUBSTATUSES as readonly string[]).includes(value);
}

export interface ReferralState {
  status: Status;
  substatus: Substatus;
}

/** The (status, substatus) pair of a referral, or undefined when it is not a pair the rules know. */
export function knownState(referral: JsonObject): ReferralState | undefined {
  const { status, substatus } = referral;
  if (!isStatus(status) || !isSubstatus(substatus)) return undefined;
  return SUBSTATUSES_BY_STATUS[status].includes(substatus) ? { status, substatus } : undefined;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON paths the adapter may write, as JSON pointers. Everything else is preserved verbatim. */
export const WRITABLE_PATHS = {
  status: ['status'],
  substatus: ['substatus'],
  statusReason: ['statusReason'],
  name: ['name'],
  externalReferenceId: ['externalReferenceId'],
  dealValue: ['details', 'dealValue'],
  currency: ['details', 'currency'],
  closingDateTime: ['details', 'closingDateTime'],
  notes: ['details', 'notes'],
} as const satisfies Record<string, readonly string[]>;

export type WritableField = keyof typeof WRITABLE_PATHS;

export function pointerOf(field: WritableField): string {
  return `/${WRITABLE_PATHS[field].join('/')}`;
}

/** Keys Partner Center returns that must not go back in a PUT (docs/partner-center-api.md#put-full-replace). */
export function isReadOnlyAnnotation(key: string): boolean {
  return key === 'links' || key.startsWith('@odata.');
}

/** The value at `path` (own properties only), or undefined when any step is missing. */
export function readPath(referral: JsonObject, path: readonly string[]): JsonValue | undefined {
  let node: JsonValue | undefined = referral;
  for (const key of path) {
    if (!isJsonObject(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}
