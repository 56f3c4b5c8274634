/**
 * Random fault mode for reliability suites: each request draws, from a
 * seeded PRNG, whether it gets a fault and which one. Every request consumes
 * exactly three draws whatever happens to it (fault or not, rule or not), so
 * the fault a request gets depends only on the seed, its position in the
 * request sequence and whether the kind applies to it: replaying the same
 * requests in the same order with the same seed replays the same faults.
 */
import { isPlainObject } from './json.js';

export type RandomFaultKind =
  /** 429 with Retry-After: 0 or 1 (drawn), throttling body; nothing applied. */
  | 'throttle'
  /** 500, 502 or 503 (drawn) with the Partner error body; nothing applied. */
  | 'server-error'
  /** Destroy the socket without answering; nothing applied. */
  | 'reset'
  /** PUT/PATCH only: handle normally (the write IS stored when valid), then destroy the socket. */
  | 'lost-response'
  /** Delay, then handle normally. */
  | 'latency'
  /**
   * PUT/PATCH only, on a stored referral: another writer edits it first (see `applyExternalEdit`), so the write
   * gets 412 (a PATCH without If-Match would be applied over the edit).
   */
  | 'concurrent-edit';

export const RANDOM_FAULT_KINDS: readonly RandomFaultKind[] = [
  'throttle',
  'server-error',
  'reset',
  'lost-response',
  'latency',
  'concurrent-edit',
];

export interface RandomFaults {
  /** Probability in [0, 1] that a request gets a fault. */
  rate: number;
  /** Deterministic PRNG seed (mulberry32, 32-bit), so a failing run can be replayed. */
  seed: number;
  /** Which faults to draw from, uniformly among those that apply to the request (default: all). */
  kinds?: ReadonlyArray<RandomFaultKind>;
  /** Upper bound of the latency a 'latency' fault adds, ms; drawn from [min(5, max), max]. Default 50. */
  maxLatencyMs?: number;
}

/** A drawn fault with its drawn parameters. */
export type RandomFault =
  | { kind: 'throttle'; retryAfter: '0' | '1' }
  | { kind: 'server-error'; status: 500 | 502 | 503 }
  | { kind: 'reset' }
  | { kind: 'lost-response' }
  | { kind: 'latency'; ms: number }
  | { kind: 'concurrent-edit' };

/** mulberry32: a small, fast 32-bit PRNG; returns numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DEFAULT_MAX_LATENCY_MS = 50;
const MIN_LATENCY_MS = 5;

function checkConfig(config: RandomFaults): void {
  if (typeof config.rate !== 'number' || !(config.rate >= 0 && config.rate <= 1)) {
    throw new RangeError(`RandomFaults.rate must be a number in [0, 1]; got ${String(config.rate)}`);
  }
  if (!Number.isSafeInteger(config.seed)) {
    throw new RangeError(`RandomFaults.seed must be an integer; got ${String(config.seed)}`);
  }
  if (config.kinds !== undefined) {
    if (config.kinds.length === 0) throw new RangeError('RandomFaults.kinds must name at least one kind');
    const unknown = config.kinds.filter((kind) => !RANDOM_FAULT_KINDS.includes(kind));
    if (unknown.length > 0) throw new RangeError(`Unknown random fault kind(s): ${unknown.join(', ')}`);
  }
  const max = config.maxLatencyMs;
  if (max !== undefined && !(Number.isFinite(max) && max >= 0)) {
    throw new RangeError(`RandomFaults.maxLatencyMs must be a finite number >= 0; got ${String(max)}`);
  }
}

/** What the fault source needs to know about a request to decide which kinds apply. */
export interface FaultCandidate {
  method: string;
  /** True when the request addresses a referral that is in the store (a concurrent edit needs one). */
  referralStored: boolean;
}

function applies(kind: RandomFaultKind, request: FaultCandidate): boolean {
  const method = request.method.toUpperCase();
  switch (kind) {
    case 'lost-response':
      return method === 'PUT' || method === 'PATCH';
    case 'concurrent-edit':
      return (method === 'PUT' || method === 'PATCH') && request.referralStored;
    default:
      return true;
  }
}

export class RandomFaultSource {
  private readonly random: () => number;
  private readonly rate: number;
  private readonly kinds: readonly RandomFaultKind[];
  private readonly maxLatencyMs: number;

  constructor(config: RandomFaults) {
    checkConfig(config);
    this.random = mulberry32(config.seed);
    this.rate = config.rate;
    this.kinds = [...new Set(config.kinds ?? RANDOM_FAULT_KINDS)];
    this.maxLatencyMs = config.maxLatencyMs ?? DEFAULT_MAX_LATENCY_MS;
  }

  /**
   * The fault for the next request, or undefined. Always consumes three draws
   * (fire?, kind, parameter) so one request's outcome never shifts the next's.
   * A request no configured kind applies to (e.g. a GET with only
   * 'lost-response') gets no fault.
   */
  next(request: FaultCandidate): RandomFault | undefined {
    const fire = this.random();
    const pick = this.random();
    const parameter = this.random();
    if (fire >= this.rate) return undefined;
    const candidates = this.kinds.filter((kind) => applies(kind, request));
    const kind = candidates[Math.floor(pick * candidates.length)];
    switch (kind) {
      case undefined:
        return undefined;
      case 'throttle':
        return { kind, retryAfter: parameter < 0.5 ? '0' : '1' };
      case 'server-error': {
        const statuses = [500, 502, 503] as const;
        return { kind, status: statuses[Math.floor(parameter * statuses.length)] ?? 503 };
      }
      case 'latency': {
        const low = Math.min(MIN_LATENCY_MS, this.maxLatencyMs);
        return { kind, ms: low + Math.floor(parameter * (Math.floor(this.maxLatencyMs) - low + 1)) };
      }
      default:
        return { kind };
    }
  }
}

/**
 * The fields the adapter writes, as JSON paths. A concurrent edit must leave
 * every one of them alone, and `appliedWrites` reports exactly these.
 */
export const ADAPTER_WRITTEN_PATHS: ReadonlyArray<readonly [string] | readonly ['details', string]> = [
  ['status'],
  ['substatus'],
  ['statusReason'],
  ['name'],
  ['externalReferenceId'],
  ['details', 'dealValue'],
  ['details', 'currency'],
  ['details', 'closingDateTime'],
  ['details', 'notes'],
];

/**
 * The adapter-written fields of `doc`, in the document's shape: absent fields
 * are left out, a `details` that is null or not an object is kept as is.
 */
export function adapterWrittenFields(doc: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const path of ADAPTER_WRITTEN_PATHS) {
    const [first, second] = path;
    if (!Object.hasOwn(doc, first)) continue;
    const value = doc[first];
    if (second === undefined) {
      fields[first] = structuredClone(value);
    } else if (!isPlainObject(value)) {
      fields[first] = structuredClone(value);
    } else if (Object.hasOwn(value, second)) {
      const details = isPlainObject(fields[first]) ? fields[first] : {};
      details[second] = structuredClone(value[second]);
      fields[first] = details;
    }
  }
  return fields;
}

/** Where the concurrent editor keeps its count, inside `customAttributes`. */
export const EXTERNAL_EDIT_COUNTER = 'externalEditCounter';

/**
 * The 'concurrent-edit' fault's edit: another writer (a CRM connector, a
 * seller in the portal) changes the referral between the app's GET and PUT.
 *
 * It deliberately touches NO field the adapter writes (status, substatus,
 * statusReason, name, externalReferenceId, details.dealValue,
 * details.currency, details.closingDateTime, details.notes): it only adds 1
 * to `customAttributes.externalEditCounter` (absent or not a number counts
 * as 0; a missing or non-object `customAttributes` becomes an object, other
 * keys kept). The store then bumps the eTag and updatedDateTime. So the app's
 * PUT gets 412, and a suite can check that no external edit was lost: after
 * the run, the counter must equal `stats().externalEdits[id]` (when it started
 * at 0), and the app's own fields must still match the model.
 */
export function applyExternalEdit(referral: Record<string, unknown>): void {
  const attributes = isPlainObject(referral.customAttributes) ? referral.customAttributes : {};
  const current = attributes[EXTERNAL_EDIT_COUNTER];
  attributes[EXTERNAL_EDIT_COUNTER] = (typeof current === 'number' && Number.isFinite(current) ? current : 0) + 1;
  referral.customAttributes = attributes;
}
