/**
 * The Azure Table Storage plumbing the Table stores share (idempotency/table-store.ts, delivery/table-store.ts):
 * one `TableClient` per store, created with the table on first use (`@azure/data-tables` loaded then), and each
 * store operation under its own bound and the caller's deadline, every failure turned into the store's error.
 *
 * In Azure the client uses the function app's identity-based storage connection
 * (`AzureWebJobsStorage__tableServiceUri` + managed identity); locally and in tests a connection string.
 */
import type { TableClient } from '@azure/data-tables';
import { managedIdentityCredential } from '../auth/managed-identity.js';
import type { IdempotencyConfig } from '../config.js';
import { type AbortOptions, abortable, boundedSignal } from '../core/abort.js';
import { sharedUntilFailure } from '../core/lazy.js';

export type TableConfig = Extract<IdempotencyConfig, { store: 'table' }>;

/** A store's own bounds, inside the caller's deadline. */
export interface TableStoreOptions {
  /** Upper bound for one store operation (all its Table calls). Default 10 s. */
  operationTimeoutMs?: number;
  /** Upper bound for creating the table on first use: shared by every waiting caller. Default 10 s. */
  setupTimeoutMs?: number;
}

/** Runs `fn` with the table under the operation's signal; any failure is rethrown as `toError(failure)`. */
export type TableOperation = <R>(
  options: AbortOptions | undefined,
  fn: (table: TableClient, call: { abortSignal: AbortSignal }) => Promise<R>,
) => Promise<R>;

export function tableOperation(
  config: TableConfig,
  bounds: TableStoreOptions,
  toError: (error: unknown) => Error,
): TableOperation {
  const { operationTimeoutMs = 10_000, setupTimeoutMs = 10_000 } = bounds;
  const client = sharedClient(config, setupTimeoutMs);
  return async (options, fn) => {
    const bound = boundedSignal(operationTimeoutMs, options?.abortSignal);
    const { signal: abortSignal } = bound;
    try {
      return await fn(await abortable(client(), abortSignal), { abortSignal });
    } catch (error) {
      throw toError(error);
    } finally {
      bound.release();
    }
  };
}

/**
 * One `TableClient` per table configuration in the process: the event store and the delivery store use the same
 * table (the same configuration object), so one client, one connection pool and one `createTable` serve both.
 */
const clients = new WeakMap<TableConfig, () => Promise<TableClient>>();

function sharedClient(config: TableConfig, setupTimeoutMs: number): () => Promise<TableClient> {
  const known = clients.get(config);
  if (known) return known;
  const client = sharedUntilFailure(async () => {
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
    await table.createTable({ abortSignal: AbortSignal.timeout(setupTimeoutMs) });
    return table;
  });
  clients.set(config, client);
  return client;
}
