/**
 * The deliveries in Azure Table Storage (`@azure/data-tables`, loaded on first use), in the idempotency
 * table (IDEMPOTENCY_TABLE_NAME): docs/async-delivery.md.
 *
 * Rows: PartitionKey `delivery-<2 hex>`, RowKey = SHA-256 of the event id (ids may hold characters Table keys
 * forbid). Every field of the record is a column; `event`, `lastError`, `changedPaths` and the answer's headers
 * are JSON; the event and the answer's body are split into chunks of 30,000 characters (a string property holds
 * at most 32K UTF-16 characters: https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model).
 * A null field is an absent column (updates replace the whole row).
 *
 * Atomicity comes from the service: an insert of an existing row answers 409 (first writer wins) and an update
 * or delete with a stale eTag answers 412. Every operation runs under the caller's `abortSignal` and a bound of
 * its own; any failure is `delivery_unavailable` (503, retryable).
 */
import { createHash } from 'node:crypto';
import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { AdapterError, statusCodeOf, storageFailure } from '../core/errors.js';
import type { StoredResponse } from '../idempotency/store.js';
import { type TableConfig, type TableStoreOptions, tableOperation } from '../idempotency/table-client.js';
import {
  DELIVERY_STATES,
  type DeliveryChanges,
  type DeliveryError,
  type DeliveryRecord,
  type DeliveryState,
  type DeliveryStore,
  newDeliveryRecord,
  type QueuedEvent,
} from './store.js';

const CHUNK = 30_000;
/** 30 chunks of 30,000 characters: within the 1 MiB an entity may hold. */
const MAX_CHUNKS = 30;
const PARTITION_PREFIX = 'delivery-';
/** The character after `-`: `PartitionKey lt 'delivery.'` ends the range of delivery partitions. */
const PARTITION_END = 'delivery.';

type DeliveryTableStoreOptions = TableStoreOptions;

type Row = {
  partitionKey: string;
  rowKey: string;
  eventId: string;
  referralId: string;
  fingerprint: string;
  token: string;
  state: string;
  acceptedAt: string;
  orderedAt: string;
  attempts: number;
  lastAttemptAt?: string;
  nextAttemptAt?: string;
  deadLetteredAt?: string;
  lastError?: string;
  changedPaths?: string;
  eventChunks?: number;
  answerStatus?: number;
  answerHeaders?: string;
  answerChunks?: number;
} & { [chunk: `event${number}` | `answer${number}`]: string };

function deliveryKeys(eventId: string): { partitionKey: string; rowKey: string } {
  const digest = createHash('sha256').update(eventId).digest('hex');
  return { partitionKey: `${PARTITION_PREFIX}${digest.slice(0, 2)}`, rowKey: digest };
}

const storeError = storageFailure(
  'delivery_unavailable',
  'The deliveries store (Azure Table Storage)',
  'DELIVERY_STORE_UNAVAILABLE',
);

function putChunks(row: Row, prefix: 'event' | 'answer', text: string): number {
  const chunks = Math.max(1, Math.ceil(text.length / CHUNK));
  if (chunks > MAX_CHUNKS) throw new RangeError(`the ${prefix} is too long for one Table entity`);
  for (let i = 0; i < chunks; i++) row[`${prefix}${i}`] = text.slice(i * CHUNK, (i + 1) * CHUNK);
  return chunks;
}

function readChunks(row: Partial<Row>, prefix: 'event' | 'answer', chunks: number | undefined): string {
  let text = '';
  for (let i = 0; i < (chunks ?? 0); i++) text += row[`${prefix}${i}`] ?? '';
  return text;
}

/** The row of a record (without its version). */
function rowOf(record: Omit<DeliveryRecord, 'version'>): Row {
  const row: Row = {
    ...deliveryKeys(record.eventId),
    eventId: record.eventId,
    referralId: record.referralId,
    fingerprint: record.fingerprint,
    token: record.token,
    state: record.state,
    acceptedAt: record.acceptedAt,
    orderedAt: record.orderedAt,
    attempts: record.attempts,
  };
  if (record.lastAttemptAt !== null) row.lastAttemptAt = record.lastAttemptAt;
  if (record.nextAttemptAt !== null) row.nextAttemptAt = record.nextAttemptAt;
  if (record.deadLetteredAt !== null) row.deadLetteredAt = record.deadLetteredAt;
  if (record.lastError !== null) row.lastError = JSON.stringify(record.lastError);
  if (record.changedPaths !== null) row.changedPaths = JSON.stringify(record.changedPaths);
  if (record.event !== null) row.eventChunks = putChunks(row, 'event', JSON.stringify(record.event));
  if (record.answer !== null) {
    row.answerStatus = record.answer.status;
    row.answerHeaders = JSON.stringify(record.answer.headers);
    row.answerChunks = putChunks(row, 'answer', record.answer.body);
  }
  return row;
}

function stateOf(value: unknown): DeliveryState {
  const state = DELIVERY_STATES.find((known) => known === value);
  if (state === undefined) throw new TypeError('a delivery row holds an unknown state');
  return state;
}

/** The record of a row read from the table. */
export function recordOf(row: Partial<Row> & { etag?: string }): DeliveryRecord {
  const event = row.eventChunks ? (JSON.parse(readChunks(row, 'event', row.eventChunks)) as QueuedEvent) : null;
  const answer: StoredResponse | null =
    row.answerStatus === undefined
      ? null
      : {
          status: row.answerStatus,
          headers: JSON.parse(row.answerHeaders ?? '{}') as Record<string, string>,
          body: readChunks(row, 'answer', row.answerChunks),
        };
  return {
    eventId: String(row.eventId),
    referralId: String(row.referralId),
    fingerprint: String(row.fingerprint),
    token: String(row.token),
    state: stateOf(row.state),
    acceptedAt: String(row.acceptedAt),
    orderedAt: String(row.orderedAt),
    attempts: Number(row.attempts ?? 0),
    lastAttemptAt: row.lastAttemptAt ?? null,
    nextAttemptAt: row.nextAttemptAt ?? null,
    deadLetteredAt: row.deadLetteredAt ?? null,
    lastError: row.lastError ? (JSON.parse(row.lastError) as DeliveryError) : null,
    changedPaths: row.changedPaths ? (JSON.parse(row.changedPaths) as string[]) : null,
    event,
    answer,
    version: row.etag ?? '*',
  };
}

/** The SDK's continuation token, wrapped so callers see one opaque string (base64url JSON). */
function wrapToken(token: string | undefined): string | undefined {
  return token === undefined ? undefined : Buffer.from(JSON.stringify({ t: token })).toString('base64url');
}

function unwrapToken(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { t?: unknown };
    if (typeof parsed.t === 'string' && parsed.t !== '') return parsed.t;
  } catch {
    // falls through to the refusal below
  }
  throw new AdapterError('invalid_event', 'The continuationToken is not one this list answered.', {
    extensions: {
      errors: [
        {
          pointer: '',
          field: 'continuationToken',
          code: 'invalid_continuation_token',
          message: 'not a continuation token of this list',
        },
      ],
    },
  });
}

export function createTableDeliveryStore(config: TableConfig, bounds: DeliveryTableStoreOptions = {}): DeliveryStore {
  const operation = tableOperation(config, bounds, storeError);

  async function read(
    table: TableClient,
    call: { abortSignal: AbortSignal },
    eventId: string,
  ): Promise<DeliveryRecord | undefined> {
    const { partitionKey, rowKey } = deliveryKeys(eventId);
    try {
      return recordOf(await table.getEntity<Row>(partitionKey, rowKey, call));
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw error;
    }
  }

  return {
    create: (input, options) =>
      operation(options, async (table, call) => {
        const fresh = newDeliveryRecord(input);
        for (let attempt = 0; attempt < 3; attempt++) {
          try {
            const created = await table.createEntity(rowOf(fresh), call);
            return { created: true, record: { ...structuredClone(fresh), version: created.etag ?? '*' } };
          } catch (error) {
            if (statusCodeOf(error) !== 409) throw error;
          }
          const existing = await read(table, call, input.eventId);
          if (existing) return { created: false, record: existing };
          // Removed between the insert and the read (an acceptance undone): insert again.
        }
        throw new Error('the delivery row kept changing');
      }),
    get: (eventId, options) => operation(options, (table, call) => read(table, call, eventId)),
    update: (record, changes: DeliveryChanges, options) =>
      operation(options, async (table, call) => {
        const { version: _version, ...current } = record;
        const next: Omit<DeliveryRecord, 'version'> = {
          ...current,
          ...structuredClone(changes),
          eventId: record.eventId,
        };
        try {
          const written = await table.updateEntity(rowOf(next), 'Replace', { ...call, etag: record.version });
          return { ...next, version: written.etag ?? '*' };
        } catch (error) {
          const status = statusCodeOf(error);
          if (status === 412 || status === 404) return undefined;
          throw error;
        }
      }),
    remove: (record, options) =>
      operation(options, async (table, call) => {
        const { partitionKey, rowKey } = deliveryKeys(record.eventId);
        try {
          await table.deleteEntity(partitionKey, rowKey, { ...call, etag: record.version });
        } catch (error) {
          const status = statusCodeOf(error);
          if (status !== 404 && status !== 412) throw error;
        }
      }),
    list: async ({ state, referralId, top, continuationToken }, options) => {
      // A bad token is the caller's mistake (400), not the store's: decided before any call.
      const start = unwrapToken(continuationToken);
      return operation(options, async (table, call) => {
        const { odata } = await import('../idempotency/data-tables.js');
        const clauses = [odata`PartitionKey ge ${PARTITION_PREFIX} and PartitionKey lt ${PARTITION_END}`];
        if (state !== undefined) clauses.push(odata`state eq ${state}`);
        if (referralId !== undefined) clauses.push(odata`referralId eq ${referralId}`);
        const pages = table
          .listEntities<Row>({ ...call, queryOptions: { filter: clauses.join(' and ') } })
          .byPage({ maxPageSize: Math.max(1, Math.min(1000, top)), continuationToken: start });
        // The service may answer a page with no entity but a continuation token (a partition boundary,
        // a time limit): read on until a page has items or the query ends.
        for await (const page of pages) {
          const items = page.map((row: TableEntityResult<Row>) => recordOf(row));
          const next = wrapToken(page.continuationToken);
          if (items.length > 0 || next === undefined)
            return next === undefined ? { items } : { items, continuationToken: next };
        }
        return { items: [] };
      });
    },
  };
}
