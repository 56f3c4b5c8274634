/**
 * The idempotency store in Azure Table Storage (`@azure/data-tables`, loaded on first use).
 *
 * In Azure it uses the function app's identity-based storage connection
 * (`AzureWebJobsStorage__tableServiceUri` + managed identity, role Storage Table Data Contributor);
 * locally and in tests a connection string, e.g. Azurite's. Atomicity comes from the service: an insert
 * of an existing row answers 409 (first writer wins) and an update with a stale eTag answers 412.
 *
 * Rows: PartitionKey `event-<2 hex>`, RowKey = SHA-256 of the event id (ids may hold characters Table
 * keys forbid); PartitionKey `referral`, RowKey = referral id, for ordering: `fields` holds the ordering
 * record as JSON (docs/ordering.md), replaced only with the row's ETag. A row of an earlier version holds
 * `occurredAt` instead, read as that time for every field. Expired event rows are
 * overwritten when their id comes back; nothing else reads them.
 *
 * Every operation runs under the caller's `abortSignal` (the event's deadline) and a bound of its own;
 * an aborted or timed-out call is `idempotency_store_unavailable`, like any other store failure.
 */
import { createHash } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { statusCodeOf, storageFailure } from '../core/errors.js';
import { parseOrderingRecord } from '../core/ordering.js';
import type { BeginResult, IdempotencyStore, StoredResponse } from './store.js';
import { type TableConfig, type TableStoreOptions, tableOperation } from './table-client.js';

export type { TableStoreOptions } from './table-client.js';

/** Table string properties hold at most 32K UTF-16 characters: long bodies are split. */
const CHUNK = 30_000;
const MAX_CHUNKS = 30;

interface EventRow {
  partitionKey: string;
  rowKey: string;
  fingerprint: string;
  state: 'in-progress' | 'done';
  leaseUntil: number;
  expiresAt: number;
  status?: number;
  headers?: string;
  chunks?: number;
  [chunk: `body${number}`]: string;
}

function eventKeys(key: string): { partitionKey: string; rowKey: string } {
  const digest = createHash('sha256').update(key).digest('hex');
  return { partitionKey: `event-${digest.slice(0, 2)}`, rowKey: digest };
}

const storeError = storageFailure(
  'idempotency_store_unavailable',
  'The idempotency store (Azure Table Storage)',
  'IDEMPOTENCY_STORE_UNAVAILABLE',
  '; the event was not processed',
);

export function createTableIdempotencyStore(config: TableConfig, bounds: TableStoreOptions = {}): IdempotencyStore {
  const operation = tableOperation(config, bounds, storeError);

  async function begin(
    table: TableClient,
    call: { abortSignal: AbortSignal },
    key: string,
    fingerprint: string,
    leaseMs: number,
    retentionMs: number,
  ): Promise<BeginResult> {
    const keys = eventKeys(key);
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = Date.now();
      const fresh: EventRow = {
        ...keys,
        fingerprint,
        state: 'in-progress',
        leaseUntil: now + leaseMs,
        // Never expires before its lease: a running event's id is not free for another delivery (docs/ordering.md).
        expiresAt: now + Math.max(retentionMs, leaseMs),
      };
      try {
        const created = await table.createEntity(fresh, call);
        return { kind: 'started', lease: { key, version: created.etag ?? '*' } };
      } catch (error) {
        if (statusCodeOf(error) !== 409) throw error;
      }
      let row: EventRow & { etag: string };
      try {
        row = (await table.getEntity<EventRow>(keys.partitionKey, keys.rowKey, call)) as EventRow & {
          etag: string;
        };
      } catch (error) {
        if (statusCodeOf(error) === 404) continue; // released meanwhile: insert again
        throw error;
      }
      const live = row.expiresAt > now;
      if (live && row.fingerprint !== fingerprint) return { kind: 'mismatch' };
      if (live && row.state === 'done') return { kind: 'replay', response: responseOf(row) };
      if (live && row.leaseUntil > now) return { kind: 'in-progress' };
      // Expired, or in progress under a lease its owner let lapse (a crashed instance): take it over.
      try {
        const updated = await table.updateEntity(fresh, 'Replace', { ...call, etag: row.etag });
        return { kind: 'started', lease: { key, version: updated.etag ?? '*' } };
      } catch (error) {
        if (statusCodeOf(error) !== 412) throw error;
      }
    }
    return { kind: 'in-progress' };
  }

  return {
    begin: (eventId, fingerprint, { leaseMs, retentionMs, abortSignal }) =>
      operation({ abortSignal }, (table, call) => begin(table, call, eventId, fingerprint, leaseMs, retentionMs)),
    complete: (lease, fingerprint, response, { retentionMs, abortSignal }) =>
      operation({ abortSignal }, async (table, call) => {
        const chunks = Math.min(MAX_CHUNKS, Math.max(1, Math.ceil(response.body.length / CHUNK)));
        const row: EventRow = {
          ...eventKeys(lease.key),
          fingerprint,
          state: 'done',
          leaseUntil: 0,
          expiresAt: Date.now() + retentionMs,
          status: response.status,
          headers: JSON.stringify(response.headers),
          chunks,
        };
        for (let i = 0; i < chunks; i++) row[`body${i}`] = response.body.slice(i * CHUNK, (i + 1) * CHUNK);
        await table.updateEntity(row, 'Replace', { ...call, etag: '*' });
      }),
    release: (lease, options) =>
      operation(options, async (table, call) => {
        const { partitionKey, rowKey } = eventKeys(lease.key);
        try {
          await table.deleteEntity(partitionKey, rowKey, { ...call, etag: lease.version });
        } catch (error) {
          const status = statusCodeOf(error);
          if (status !== 404 && status !== 412) throw error;
        }
      }),
    readOrdering: (referralId, options) =>
      operation(options, async (table, call) => {
        try {
          const row = await table.getEntity<{ fields?: string; occurredAt?: string }>('referral', referralId, call);
          return { record: parseOrderingRecord(row.fields, row.occurredAt), version: row.etag };
        } catch (error) {
          if (statusCodeOf(error) === 404) return { record: {}, version: undefined };
          throw error;
        }
      }),
    writeOrdering: (referralId, record, version, options) =>
      operation(options, async (table, call) => {
        const row = { partitionKey: 'referral', rowKey: referralId, fields: JSON.stringify(record) };
        try {
          const written =
            version === undefined
              ? await table.createEntity(row, call)
              : await table.updateEntity(row, 'Replace', { ...call, etag: version });
          return written.etag ?? undefined;
        } catch (error) {
          const status = statusCodeOf(error);
          if (status === 409 || status === 412) return undefined;
          throw error;
        }
      }),
  };
}

function responseOf(row: EventRow): StoredResponse {
  let body = '';
  for (let i = 0; i < (row.chunks ?? 0); i++) body += row[`body${i}`] ?? '';
  return { status: row.status ?? 200, headers: JSON.parse(row.headers ?? '{}') as Record<string, string>, body };
}
