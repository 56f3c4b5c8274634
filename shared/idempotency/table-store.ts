/**
 * The idempotency store in Azure Table Storage (`@azure/data-tables`, loaded on first use).
 *
 * In Azure it uses the function app's identity-based storage connection
 * (`AzureWebJobsStorage__tableServiceUri` + managed identity, role Storage Table Data Contributor);
 * locally and in tests a connection string, e.g. Azurite's. Atomicity comes from the service: an insert
 * of an existing row answers 409 (first writer wins) and an update with a stale eTag answers 412.
 *
 * Rows: PartitionKey `event-<2 hex>`, RowKey = SHA-256 of the event id (ids may hold characters Table
 * keys forbid); PartitionKey `referral`, RowKey = referral id, for ordering. Expired event rows are
 * overwritten when their id comes back; nothing else reads them.
 */
import { createHash } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { managedIdentityCredential } from '../auth/managed-identity.js';
import type { IdempotencyConfig } from '../config.js';
import { AdapterError } from '../core/errors.js';
import type { BeginResult, IdempotencyStore, Lease, StoredResponse } from './store.js';

type TableConfig = Extract<IdempotencyConfig, { store: 'table' }>;

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

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}

function storeError(error: unknown): AdapterError {
  if (error instanceof AdapterError) return error;
  const status = statusOf(error);
  return new AdapterError(
    'idempotency_store_unavailable',
    `The idempotency store (Azure Table Storage) could not be used (${status ? `HTTP ${status}` : error instanceof Error ? error.name : 'error'}); the event was not processed.`,
    { cause: error, retryAfterSeconds: 2, logCode: 'IDEMPOTENCY_STORE_UNAVAILABLE' },
  );
}

export function createTableIdempotencyStore(config: TableConfig): IdempotencyStore {
  let client: Promise<TableClient> | undefined;
  const getClient = () => {
    client ??= (async () => {
      const { TableClient } = await import('./data-tables.js');
      const { connection } = config;
      const options = { retryOptions: { maxRetries: 1, retryDelayInMs: 100 } };
      const table =
        'connectionString' in connection
          ? TableClient.fromConnectionString(connection.connectionString, config.tableName, {
              ...options,
              allowInsecureConnection: /UseDevelopmentStorage=true|(^|;)TableEndpoint=http:/i.test(
                connection.connectionString,
              ),
            })
          : new TableClient(
              connection.tableServiceUri,
              config.tableName,
              await managedIdentityCredential(connection.clientId),
              options,
            );
      await table.createTable();
      return table;
    })().catch((error: unknown) => {
      client = undefined;
      throw error;
    });
    return client;
  };

  const guarded =
    <A extends unknown[], R>(fn: (table: TableClient, ...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(await getClient(), ...args);
      } catch (error) {
        throw storeError(error);
      }
    };

  async function begin(
    table: TableClient,
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
        expiresAt: now + retentionMs,
      };
      try {
        const created = await table.createEntity(fresh);
        return { kind: 'started', lease: { key, version: created.etag ?? '*' } };
      } catch (error) {
        if (statusOf(error) !== 409) throw error;
      }
      let row: EventRow & { etag: string };
      try {
        row = (await table.getEntity<EventRow>(keys.partitionKey, keys.rowKey)) as EventRow & { etag: string };
      } catch (error) {
        if (statusOf(error) === 404) continue; // released meanwhile: insert again
        throw error;
      }
      const live = row.expiresAt > now;
      if (live && row.fingerprint !== fingerprint) return { kind: 'mismatch' };
      if (live && row.state === 'done') return { kind: 'replay', response: responseOf(row) };
      if (live && row.leaseUntil > now) return { kind: 'in-progress' };
      // Expired, or in progress under a lease its owner let lapse (a crashed instance): take it over.
      try {
        const updated = await table.updateEntity(fresh, 'Replace', { etag: row.etag });
        return { kind: 'started', lease: { key, version: updated.etag ?? '*' } };
      } catch (error) {
        if (statusOf(error) !== 412) throw error;
      }
    }
    return { kind: 'in-progress' };
  }

  return {
    begin: guarded(begin),
    complete: guarded(
      async (table, lease: Lease, fingerprint: string, response: StoredResponse, retentionMs: number) => {
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
        await table.updateEntity(row, 'Replace', { etag: '*' });
      },
    ),
    release: guarded(async (table, lease: Lease) => {
      const { partitionKey, rowKey } = eventKeys(lease.key);
      try {
        await table.deleteEntity(partitionKey, rowKey, { etag: lease.version });
      } catch (error) {
        const status = statusOf(error);
        if (status !== 404 && status !== 412) throw error;
      }
    }),
    lastOccurredAt: guarded(async (table, referralId: string) => {
      try {
        const row = await table.getEntity<{ occurredAt: string }>('referral', referralId);
        return row.occurredAt;
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    }),
    recordOccurredAt: guarded(async (table, referralId: string, occurredAt: string) => {
      for (let attempt = 0; attempt < 5; attempt++) {
        let current: { occurredAt: string; etag: string } | undefined;
        try {
          current = (await table.getEntity<{ occurredAt: string }>('referral', referralId)) as {
            occurredAt: string;
            etag: string;
          };
        } catch (error) {
          if (statusOf(error) !== 404) throw error;
        }
        if (current && Date.parse(current.occurredAt) >= Date.parse(occurredAt)) return;
        const row = { partitionKey: 'referral', rowKey: referralId, occurredAt };
        try {
          if (current) await table.updateEntity(row, 'Replace', { etag: current.etag });
          else await table.createEntity(row);
          return;
        } catch (error) {
          const status = statusOf(error);
          if (status !== 409 && status !== 412) throw error;
        }
      }
    }),
  };
}

function responseOf(row: EventRow): StoredResponse {
  let body = '';
  for (let i = 0; i < (row.chunks ?? 0); i++) body += row[`body${i}`] ?? '';
  return { status: row.status ?? 200, headers: JSON.parse(row.headers ?? '{}') as Record<string, string>, body };
}
