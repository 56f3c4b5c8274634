/**
 * What the sandbox did, for suites that compare its final state with a model:
 * every fault that fired, every write stored over HTTP, external edits and a
 * few counters. Everything here is cleared by the sandbox's reset().
 */
import { adapterWrittenFields, RANDOM_FAULT_KINDS, type RandomFaultKind } from './random-faults.js';

/** A fault's kind in the log: a random kind, or 'rule' for an `injectFault` rule. */
export type FaultLogKind = RandomFaultKind | 'rule';

export interface FaultLogEntry {
  /** The request's number: 1 for the first request after reset(), and so on (clearRequests() does not restart it). */
  readonly seq: number;
  readonly method: string;
  /** Set when the path addresses one referral (as written in the URL). */
  readonly referralId?: string;
  readonly kind: FaultLogKind;
  /** True when the request's write was stored (a PUT/PATCH under 'lost-response', 'latency', a rule that applies). */
  readonly applied: boolean;
  /** The drawn parameter, for reports: e.g. "429 retry-after 1", "502", "17 ms"; rules give their action type. */
  readonly detail?: string;
}

export interface AppliedWrite {
  /** The request's number, as in FaultLogEntry.seq. */
  readonly seq: number;
  readonly method: 'PUT' | 'PATCH';
  /** The eTag the write replaced. */
  readonly replacedETag: string;
  /** The eTag the write produced. */
  readonly eTag: string;
  /**
   * The adapter-written fields as stored after the write (status, substatus,
   * statusReason, name, externalReferenceId, details.{dealValue, currency,
   * closingDateTime, notes}), in the document's shape; absent fields are left out.
   */
  readonly fields: Readonly<Record<string, unknown>>;
  /** The fault that hit the request, if any (e.g. 'lost-response': the client never saw the answer). */
  readonly fault?: FaultLogKind;
}

export interface SandboxStats {
  /** Requests received since reset() (clearRequests() does not change this). */
  requests: number;
  /** PUT requests received, faulted ones included. */
  puts: number;
  /** PUTs whose write was stored, including those whose response a fault dropped or replaced. */
  appliedPuts: number;
  patches: number;
  appliedPatches: number;
  /** Requests the API answered 412 (a concurrent edit, a stale If-Match); injected status faults are not counted. */
  rejected412: number;
  /** Requests the rate-limit mode answered `429` (not in the fault log). */
  throttled: number;
  /** Faults fired: faultLog.length. */
  faults: number;
  /** Faults fired per kind ('rule' = an injectFault rule); every kind is present, 0 when none fired. */
  faultsByKind: Record<FaultLogKind, number>;
  /** Random 'concurrent-edit' edits per referral id (as stored), i.e. how much each externalEditCounter went up. */
  externalEdits: Record<string, number>;
}

interface MutableLogEntry {
  seq: number;
  method: string;
  referralId?: string;
  kind: FaultLogKind;
  applied: boolean;
  detail?: string;
}

/** The outcome of one request, reported once it has been handled. */
export interface Outcome {
  seq: number;
  method: string;
  /** The API's answer status (before any fault replaced or dropped it); undefined when never handled. */
  status?: number;
  /** Set when a PUT/PATCH was stored. */
  write?: {
    id: string;
    replacedETag: string;
    eTag: string;
    doc: Record<string, unknown>;
  };
}

function emptyByKind(): Record<FaultLogKind, number> {
  const counts = { rule: 0 } as Record<FaultLogKind, number>;
  for (const kind of RANDOM_FAULT_KINDS) counts[kind] = 0;
  return counts;
}

export class Ledger {
  private seq = 0;
  private log: MutableLogEntry[] = [];
  private bySeq = new Map<number, MutableLogEntry>();
  private writes = new Map<string, AppliedWrite[]>();
  private edits = new Map<string, number>();
  private counts = { puts: 0, appliedPuts: 0, patches: 0, appliedPatches: 0, rejected412: 0, throttled: 0 };

  clear(): void {
    this.seq = 0;
    this.log = [];
    this.bySeq = new Map();
    this.writes = new Map();
    this.edits = new Map();
    this.counts = { puts: 0, appliedPuts: 0, patches: 0, appliedPatches: 0, rejected412: 0, throttled: 0 };
  }

  /** A request arrived; returns its number. */
  received(method: string): number {
    this.seq += 1;
    if (method === 'PUT') this.counts.puts += 1;
    if (method === 'PATCH') this.counts.patches += 1;
    return this.seq;
  }

  faultFired(entry: Omit<MutableLogEntry, 'applied'>): void {
    const logged: MutableLogEntry = { ...entry, applied: false };
    this.log.push(logged);
    this.bySeq.set(entry.seq, logged);
  }

  /** The rate-limit mode answered request `seq` with `429`; nothing was handled. */
  throttled(_seq: number): void {
    this.counts.throttled += 1;
  }

  externalEdit(id: string): void {
    this.edits.set(id, (this.edits.get(id) ?? 0) + 1);
  }

  handled(outcome: Outcome): void {
    if (outcome.status === 412) this.counts.rejected412 += 1;
    const fault = this.bySeq.get(outcome.seq);
    this.bySeq.delete(outcome.seq);
    const { write } = outcome;
    if (write === undefined || (outcome.method !== 'PUT' && outcome.method !== 'PATCH')) return;
    if (outcome.method === 'PUT') this.counts.appliedPuts += 1;
    else this.counts.appliedPatches += 1;
    if (fault !== undefined) fault.applied = true;
    const key = write.id.toLowerCase();
    const list = this.writes.get(key) ?? [];
    list.push({
      seq: outcome.seq,
      method: outcome.method,
      replacedETag: write.replacedETag,
      eTag: write.eTag,
      fields: adapterWrittenFields(write.doc),
      ...(fault === undefined ? {} : { fault: fault.kind }),
    });
    this.writes.set(key, list);
  }

  /** The request ended without being handled (a reset fault, the sandbox closing). */
  abandoned(seq: number): void {
    this.bySeq.delete(seq);
  }

  get faultLog(): ReadonlyArray<FaultLogEntry> {
    return this.log.map((entry) => Object.freeze({ ...entry }));
  }

  /** Copies: changing them does not change the ledger. */
  appliedWrites(id: string): ReadonlyArray<AppliedWrite> {
    return (this.writes.get(id.toLowerCase()) ?? []).map((write) => structuredClone(write));
  }

  stats(): SandboxStats {
    const faultsByKind = emptyByKind();
    for (const entry of this.log) faultsByKind[entry.kind] += 1;
    return {
      requests: this.seq,
      ...this.counts,
      faults: this.log.length,
      faultsByKind,
      externalEdits: Object.fromEntries(this.edits),
    };
  }
}
