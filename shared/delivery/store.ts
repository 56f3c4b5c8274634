/**
 * Durable delivery (docs/async-delivery.md): what the adapter keeps about an event it accepted with `202`, and
 * the queue that carries it to the worker. The deliveries table holds one record per accepted event (its state,
 * attempts, last error, and the event itself until it is final); the queue holds only `{ v: 1, eventId }`.
 *
 * Two implementations of each: Azure Table Storage and Azure Storage Queues (table-store.ts, queue.ts) in the
 * app, and the memory ones below for the use cases' unit tests.
 */
import type { AbortOptions } from '../core/abort.js';
import type { StageMapping, UpdateIntent } from '../core/update.js';
import type { StoredResponse } from '../idempotency/store.js';

export type DeliveryState = 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'dead_lettered';
export const DELIVERY_STATES: readonly DeliveryState[] = [
  'queued',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'dead_lettered',
];
/** States an event never leaves (except `dead_lettered`, by an operator's replay). */
export const FINAL_STATES: readonly DeliveryState[] = ['succeeded', 'failed', 'dead_lettered'];

/** The last failure of an event: an error code of the catalogue and its HTTP status, never customer data. */
export interface DeliveryError {
  code: string;
  status: number;
}

/** The last error of an event whose message the host gave up on (the poison queue). */
/**
 * The longest a queue message can stay invisible: just under 7 days
 * (https://learn.microsoft.com/rest/api/storageservices/put-message). A retry is never delayed longer.
 */
export const MAX_MESSAGE_DELAY_SECONDS = 604_799;

export const POISON_ERROR: DeliveryError = { code: 'poison_message', status: 500 };

/** The event as the worker needs it: what the contract parsed, minus `dryRun` (a dry run is never queued). */
export interface QueuedEvent {
  referralId: string;
  eventId: string;
  occurredAt: string | undefined;
  intent: UpdateIntent;
  /** The CRM stage the event named and its mapping (already in `intent`), for the answer. */
  stage?: StageMapping;
}

export interface DeliveryRecord {
  eventId: string;
  referralId: string;
  /** `eventFingerprint` of the event as accepted: a redelivery with another fingerprint is another event. */
  fingerprint: string;
  /** The status URL's secret part (docs/async-delivery.md#status-url). */
  token: string;
  state: DeliveryState;
  /** ISO time; the maximum age (ASYNC_MAX_AGE_SECONDS) counts from here; a replay starts it again. */
  acceptedAt: string;
  /** ISO time of the first acceptance: the event's `occurredAt` when it has none (ordering); kept by a replay. */
  orderedAt: string;
  attempts: number;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  deadLetteredAt: string | null;
  lastError: DeliveryError | null;
  /** Paths the event changed, once it succeeded. */
  changedPaths: string[] | null;
  /** The event, kept while it may still be applied (or replayed); null once it succeeded or failed. */
  event: QueuedEvent | null;
  /** The final answer (200 or a final problem) of a `succeeded` or `failed` event. */
  answer: StoredResponse | null;
  /** Opaque (a Table eTag, or a counter in memory). */
  version: string;
}

export type NewDelivery = Pick<
  DeliveryRecord,
  'eventId' | 'referralId' | 'fingerprint' | 'token' | 'acceptedAt' | 'orderedAt' | 'event'
>;

export type DeliveryChanges = Partial<Omit<DeliveryRecord, 'eventId' | 'version'>>;

export interface DeliveryFilter {
  state?: DeliveryState;
  referralId?: string;
  /** At most this many items per page. */
  top: number;
  continuationToken?: string;
}

/**
 * Every call takes the caller's deadline as `abortSignal` and throws `delivery_unavailable` when the store
 * does not answer (in time).
 */
export interface DeliveryStore {
  /** Creates the record in state `queued`, or returns the existing one for that event id (`created: false`). */
  create(record: NewDelivery, options?: AbortOptions): Promise<{ created: boolean; record: DeliveryRecord }>;
  get(eventId: string, options?: AbortOptions): Promise<DeliveryRecord | undefined>;
  /** Applies `changes` if the record is still at `record.version`: the new record, or undefined when another writer won. */
  update(record: DeliveryRecord, changes: DeliveryChanges, options?: AbortOptions): Promise<DeliveryRecord | undefined>;
  /** Deletes the record if it is still at `record.version` (an acceptance undone). */
  remove(record: DeliveryRecord, options?: AbortOptions): Promise<void>;
  list(
    filter: DeliveryFilter,
    options?: AbortOptions,
  ): Promise<{ items: DeliveryRecord[]; continuationToken?: string }>;
}

/** What a queue message carries: the event id only (the event itself is in the store). */
export interface QueueMessage {
  v: 1;
  eventId: string;
}

export interface EventQueue {
  /** Sends the message (JSON, base64-encoded for the trigger), invisible for `delaySeconds` (0 to 7 days), never expiring. */
  send(message: QueueMessage, options?: AbortOptions & { delaySeconds?: number }): Promise<void>;
}

/** The message as the queue trigger passes it (a JSON-parsed object, or its text), or undefined when it is not ours. */
export function parseQueueMessage(value: unknown): QueueMessage | undefined {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { v, eventId } = parsed as { v?: unknown; eventId?: unknown };
  if (v !== 1 || typeof eventId !== 'string' || eventId === '' || eventId.length > 256) return undefined;
  return { v, eventId };
}

/** A record as `create` makes it: the accepted event, `queued`, no attempt yet. */
export function newDeliveryRecord(input: NewDelivery): Omit<DeliveryRecord, 'version'> {
  return {
    eventId: input.eventId,
    referralId: input.referralId,
    fingerprint: input.fingerprint,
    token: input.token,
    acceptedAt: input.acceptedAt,
    orderedAt: input.orderedAt,
    event: input.event,
    state: 'queued',
    attempts: 0,
    lastAttemptAt: null,
    nextAttemptAt: null,
    deadLetteredAt: null,
    lastError: null,
    changedPaths: null,
    answer: null,
  };
}

/** The memory store: for the use cases' unit tests (the app needs the Table store for asynchronous delivery). */
export function createMemoryDeliveryStore(): DeliveryStore & { records(): DeliveryRecord[] } {
  const records = new Map<string, DeliveryRecord>();
  let versions = 0;
  const clone = (record: DeliveryRecord) => structuredClone(record);
  return {
    async create(input) {
      const existing = records.get(input.eventId);
      if (existing) return { created: false, record: clone(existing) };
      const record: DeliveryRecord = { ...newDeliveryRecord(structuredClone(input)), version: String(++versions) };
      records.set(record.eventId, record);
      return { created: true, record: clone(record) };
    },
    async get(eventId) {
      const record = records.get(eventId);
      return record && clone(record);
    },
    async update(record, changes) {
      const current = records.get(record.eventId);
      if (!current || current.version !== record.version) return undefined;
      const next = { ...current, ...structuredClone(changes), version: String(++versions) };
      records.set(record.eventId, next);
      return clone(next);
    },
    async remove(record) {
      if (records.get(record.eventId)?.version === record.version) records.delete(record.eventId);
    },
    async list({ state, referralId, top, continuationToken }) {
      const matching = [...records.values()].filter(
        (record) =>
          (state === undefined || record.state === state) &&
          (referralId === undefined || record.referralId === referralId),
      );
      const start = continuationToken ? Number(continuationToken) : 0;
      const items = matching.slice(start, start + top).map(clone);
      const next = start + top < matching.length ? String(start + top) : undefined;
      return next === undefined ? { items } : { items, continuationToken: next };
    },
    records: () => [...records.values()].map(clone),
  };
}

/** A queue in memory for unit tests: what was sent, with its delay. */
export function createMemoryEventQueue(): EventQueue & {
  sent: Array<{ message: QueueMessage; delaySeconds: number }>;
} {
  const sent: Array<{ message: QueueMessage; delaySeconds: number }> = [];
  return {
    sent,
    async send(message, options = {}) {
      sent.push({ message: { ...message }, delaySeconds: options.delaySeconds ?? 0 });
    },
  };
}
