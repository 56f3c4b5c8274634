/**
 * What the adapter remembers between deliveries of the same event, and between events of the same
 * referral:
 * - per event id: in progress (leased to one instance) or done (with the exact response to replay),
 *   plus a fingerprint of the event so an id reused for a different event is refused;
 * - per referral: the ordering record (per field, the latest `occurredAt` and any pending claim:
 *   core/ordering.ts, docs/ordering.md), written with optimistic concurrency.
 * Two implementations: Azure Table Storage (table-store.ts) and memory (below, only when
 * IDEMPOTENCY_STORE=memory is set: it forgets on restart and is not shared between instances).
 */
import { createHash } from 'node:crypto';
import type { AbortOptions } from '../core/abort.js';
import type { OrderingRecord } from '../core/ordering.js';
import type { UpdateEvent } from '../core/update.js';

export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface Lease {
  key: string;
  /** Opaque to callers (a Table eTag, or a counter in memory). */
  version: string;
}

export type BeginResult =
  | { kind: 'started'; lease: Lease }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'in-progress' }
  | { kind: 'mismatch' };

/**
 * Every call takes the event's deadline as `abortSignal` (Azure SDK convention) and throws
 * `idempotency_store_unavailable` when the store does not answer in time.
 */
export interface IdempotencyStore {
  /**
   * Claims `eventId` for `leaseMs`, or says why not. A claim whose call was aborted may still have
   * landed: it then blocks redeliveries until its lease ends, never longer.
   */
  begin(
    eventId: string,
    fingerprint: string,
    options: { leaseMs: number; retentionMs: number; abortSignal?: AbortSignal },
  ): Promise<BeginResult>;
  /** Records the final response for replay until the retention ends. */
  complete(
    lease: Lease,
    fingerprint: string,
    response: StoredResponse,
    options: { retentionMs: number; abortSignal?: AbortSignal },
  ): Promise<void>;
  /** Forgets an event whose outcome was retryable, so a redelivery runs again. */
  release(lease: Lease, options?: AbortOptions): Promise<void>;
  /** The referral's ordering record and its version (undefined when there is none yet). */
  readOrdering(referralId: string, options?: AbortOptions): Promise<VersionedOrdering>;
  /**
   * Writes the record if it is still at `version` (undefined: only if there is none): the new version,
   * or undefined when another writer changed it first (read again and decide again).
   */
  writeOrdering(
    referralId: string,
    record: OrderingRecord,
    version: string | undefined,
    options?: AbortOptions,
  ): Promise<string | undefined>;
}

export interface VersionedOrdering {
  record: OrderingRecord;
  version: string | undefined;
}

/** A stable digest of what the event asks for: the same id with another fingerprint is another event. */
export function eventFingerprint(event: UpdateEvent): string {
  const intent = Object.fromEntries(Object.entries(event.intent).sort(([a], [b]) => a.localeCompare(b)));
  const parts: unknown[] = [event.referralId, intent, event.dryRun, event.occurredAt ?? null];
  // A stage is part of what was sent (its answer names it); events without one keep their fingerprint.
  if (event.stage) parts.push(event.stage.name);
  const canonical = JSON.stringify(parts);
  return createHash('sha256').update(canonical).digest('base64url');
}

interface MemoryRecord {
  fingerprint: string;
  state: 'in-progress' | 'done';
  leaseUntil: number;
  expiresAt: number;
  version: number;
  response?: StoredResponse;
  /** Approximate memory held (UTF-16 strings), counted against {@link MemoryStoreBounds.maxBytes}. */
  bytes: number;
}

/**
 * What the memory store may hold at once. Past either bound, the oldest finished records are dropped
 * (a redelivery of a dropped event runs again, as after the retention: safe, it finds nothing to change);
 * records in progress are never dropped.
 */
export interface MemoryStoreBounds {
  /** Event records, in progress or finished. Default 10,000. */
  maxRecords: number;
  /** Approximate bytes of the records, stored answers included. Default 32 MiB. */
  maxBytes: number;
}

export const MEMORY_STORE_BOUNDS: MemoryStoreBounds = { maxRecords: 10_000, maxBytes: 32 * 1024 * 1024 };

/** The memory store, with what it holds right now (for tests and diagnostics). */
export interface MemoryIdempotencyStore extends IdempotencyStore {
  usage(): { records: number; bytes: number };
}

const RECORD_OVERHEAD_BYTES = 200;

function sizeOf(key: string, fingerprint: string, response?: StoredResponse): number {
  const responseChars = response ? response.body.length + JSON.stringify(response.headers).length : 0;
  return RECORD_OVERHEAD_BYTES + 2 * (key.length + fingerprint.length + responseChars);
}

/**
 * Its calls never wait, so they have nothing to abort: `abortSignal` is accepted and not needed. Expired
 * records are freed as the store is used (oldest first), and the store stays within `bounds`.
 */
export function createMemoryIdempotencyStore(
  now: () => number = Date.now,
  bounds: Partial<MemoryStoreBounds> = {},
): MemoryIdempotencyStore {
  const { maxRecords, maxBytes } = { ...MEMORY_STORE_BOUNDS, ...bounds };
  // Insertion order is age order: a record is re-inserted whenever it is rewritten.
  const events = new Map<string, MemoryRecord>();
  const referrals = new Map<string, { record: OrderingRecord; version: string }>();
  let versions = 0;
  let bytes = 0;

  function put(key: string, record: MemoryRecord): void {
    remove(key);
    events.set(key, record);
    bytes += record.bytes;
  }

  function remove(key: string): void {
    const existing = events.get(key);
    if (!existing) return;
    events.delete(key);
    bytes -= existing.bytes;
  }

  /** Frees expired records from the oldest on, then the oldest finished ones while over a bound. */
  function tidy(t: number): void {
    for (const [key, record] of events) {
      if (record.expiresAt > t) break;
      remove(key);
    }
    if (events.size <= maxRecords && bytes <= maxBytes) return;
    for (const [key, record] of events) {
      if (events.size <= maxRecords && bytes <= maxBytes) break;
      if (record.state === 'done' || record.leaseUntil <= t) remove(key);
    }
  }

  return {
    async begin(key, fingerprint, { leaseMs, retentionMs }) {
      const t = now();
      tidy(t);
      const existing = events.get(key);
      if (existing && existing.expiresAt > t) {
        if (existing.fingerprint !== fingerprint) return { kind: 'mismatch' };
        if (existing.state === 'done' && existing.response) return { kind: 'replay', response: existing.response };
        if (existing.leaseUntil > t) return { kind: 'in-progress' };
      }
      const version = ++versions;
      put(key, {
        fingerprint,
        state: 'in-progress',
        leaseUntil: t + leaseMs,
        // Never expires before its lease: a running event's id is not free for another delivery.
        expiresAt: t + Math.max(retentionMs, leaseMs),
        version,
        bytes: sizeOf(key, fingerprint),
      });
      return { kind: 'started', lease: { key, version: String(version) } };
    },
    async complete(lease, fingerprint, response, { retentionMs }) {
      const t = now();
      put(lease.key, {
        fingerprint,
        state: 'done',
        leaseUntil: 0,
        expiresAt: t + retentionMs,
        version: ++versions,
        response,
        bytes: sizeOf(lease.key, fingerprint, response),
      });
      tidy(t);
    },
    async release(lease) {
      if (String(events.get(lease.key)?.version) === lease.version) remove(lease.key);
    },
    async readOrdering(referralId) {
      const current = referrals.get(referralId);
      return current
        ? { record: structuredClone(current.record), version: current.version }
        : { record: {}, version: undefined };
    },
    async writeOrdering(referralId, record, version) {
      if (referrals.get(referralId)?.version !== version) return undefined;
      const next = String(++versions);
      referrals.set(referralId, { record: structuredClone(record), version: next });
      return next;
    },
    usage: () => ({ records: events.size, bytes }),
  };
}
