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
  const canonical = JSON.stringify([event.referralId, intent, event.dryRun, event.occurredAt ?? null]);
  return createHash('sha256').update(canonical).digest('base64url');
}

interface MemoryRecord {
  fingerprint: string;
  state: 'in-progress' | 'done';
  leaseUntil: number;
  expiresAt: number;
  version: number;
  response?: StoredResponse;
}

/** Its calls never wait, so they have nothing to abort: `abortSignal` is accepted and not needed. */
export function createMemoryIdempotencyStore(now: () => number = Date.now): IdempotencyStore {
  const events = new Map<string, MemoryRecord>();
  const referrals = new Map<string, { record: OrderingRecord; version: string }>();
  let versions = 0;

  return {
    async begin(key, fingerprint, { leaseMs, retentionMs }) {
      const existing = events.get(key);
      const t = now();
      if (existing && existing.expiresAt > t) {
        if (existing.fingerprint !== fingerprint) return { kind: 'mismatch' };
        if (existing.state === 'done' && existing.response) return { kind: 'replay', response: existing.response };
        if (existing.leaseUntil > t) return { kind: 'in-progress' };
      }
      const version = ++versions;
      events.set(key, {
        fingerprint,
        state: 'in-progress',
        leaseUntil: t + leaseMs,
        expiresAt: t + retentionMs,
        version,
      });
      return { kind: 'started', lease: { key, version: String(version) } };
    },
    async complete(lease, fingerprint, response, { retentionMs }) {
      events.set(lease.key, {
        fingerprint,
        state: 'done',
        leaseUntil: 0,
        expiresAt: now() + retentionMs,
        version: ++versions,
        response,
      });
    },
    async release(lease) {
      if (String(events.get(lease.key)?.version) === lease.version) events.delete(lease.key);
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
  };
}
