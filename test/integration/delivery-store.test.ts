/**
 * The deliveries store (Azure Table Storage) and the delivery queue (Azure Storage Queues) on the run's Azurite
 * (test/support/global-setup.ts): the DeliveryStore contract, and what the queue sends (base64 JSON, invisible
 * for its delay, the queue and its poison queue created on first use). A table and a queue of this file's own.
 */
import { randomUUID } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import { describe, expect, it } from 'vitest';
import { AdapterError } from '../../shared/core/errors.js';
import { createStorageEventQueue } from '../../shared/delivery/queue.js';
import { parseQueueMessage } from '../../shared/delivery/store.js';
import { createTableDeliveryStore } from '../../shared/delivery/table-store.js';
import { deliveryStoreContract, newDelivery } from '../support/delivery-store-contract.js';

const connectionString = () => String(process.env.AzureWebJobsStorage);
const suffix = randomUUID().replaceAll('-', '').slice(0, 12);

const tableStore = (tableName = `deliveries${suffix}`) =>
  createTableDeliveryStore({
    store: 'table',
    tableName,
    connection: { connectionString: connectionString() },
    retentionSeconds: 60,
    waitMs: 0,
  });

deliveryStoreContract('Azure Table Storage (Azurite)', () => tableStore());

describe('Table deliveries store', () => {
  it('rows live in delivery-<2 hex> partitions of the idempotency table, beside its other rows', async () => {
    const { TableClient } = await import('@azure/data-tables');
    const tableName = `shared${suffix}`;
    const store = tableStore(tableName);
    const { record } = await store.create(newDelivery());
    const table = TableClient.fromConnectionString(connectionString(), tableName, { allowInsecureConnection: true });
    await table.createEntity({ partitionKey: 'referral', rowKey: 'r1', fields: '{}' });
    await table.createEntity({ partitionKey: 'event-00', rowKey: 'x', state: 'queued' });
    const rows = [];
    for await (const row of table.listEntities()) rows.push(row);
    const deliveries = rows.filter((row) => String(row.partitionKey).startsWith('delivery-'));
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]?.partitionKey).toMatch(/^delivery-[0-9a-f]{2}$/);
    expect(deliveries[0]?.rowKey).toMatch(/^[0-9a-f]{64}$/);
    // Only delivery rows are listed, whatever else the table holds.
    const listed = await store.list({ state: 'queued', top: 10 });
    expect(listed.items.map((item) => item.eventId)).toEqual([record.eventId]);
  });

  it('a continuation token is opaque, and a forged one is refused as the caller’s mistake', async () => {
    const store = tableStore();
    const referralId = `ref-${randomUUID()}`;
    for (let i = 0; i < 3; i++) await store.create(newDelivery({ referralId }));
    const page = await store.list({ referralId, top: 1 });
    expect(page.continuationToken).toMatch(/^[A-Za-z0-9_-]+$/);
    const error = await store.list({ referralId, top: 1, continuationToken: 'nope' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AdapterError);
    expect((error as AdapterError).code).toBe('invalid_event');
  });

  it('a store it cannot reach answers delivery_unavailable (503, retryable, Retry-After 2)', async () => {
    const store = createTableDeliveryStore(
      {
        store: 'table',
        tableName: 'unreachable',
        connection: {
          connectionString:
            'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;',
        },
        retentionSeconds: 60,
        waitMs: 0,
      },
      { operationTimeoutMs: 2_000, setupTimeoutMs: 2_000 },
    );
    const error = await store.get('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AdapterError);
    expect(error).toMatchObject({ code: 'delivery_unavailable', status: 503, retryable: true, retryAfterSeconds: 2 });
  });
});

describe('Storage queue', () => {
  const queueName = `deliveries-${suffix}`;
  const service = () => QueueServiceClient.fromConnectionString(connectionString());
  const config = { queueName, poisonQueueName: `${queueName}-poison`, queue: { connectionString: connectionString() } };

  it('creates the queue and its poison queue on first use, and sends base64 JSON', async () => {
    const queue = createStorageEventQueue(config);
    await queue.send({ v: 1, eventId: 'evt-now' });
    expect(await service().getQueueClient(queueName).exists()).toBe(true);
    expect(await service().getQueueClient(`${queueName}-poison`).exists()).toBe(true);

    const received = await service().getQueueClient(queueName).receiveMessages({ numberOfMessages: 32 });
    const texts = received.receivedMessageItems.map((item) => Buffer.from(item.messageText, 'base64').toString('utf8'));
    expect(texts).toEqual([JSON.stringify({ v: 1, eventId: 'evt-now' })]);
    expect(parseQueueMessage(texts[0])).toEqual({ v: 1, eventId: 'evt-now' });
    // Never expires (TTL -1: the service reports the far future).
    expect(received.receivedMessageItems[0]?.expiresOn?.getUTCFullYear()).toBeGreaterThan(9000);
  });

  it('a delayed message stays invisible until its delay has passed', async () => {
    const delayedName = `delayed-${suffix}`;
    const queue = createStorageEventQueue({
      ...config,
      queueName: delayedName,
      poisonQueueName: `${delayedName}-poison`,
    });
    await queue.send({ v: 1, eventId: 'evt-later' }, { delaySeconds: 2 });
    const client = service().getQueueClient(delayedName);
    expect((await client.receiveMessages()).receivedMessageItems).toHaveLength(0);
    expect((await client.getProperties()).approximateMessagesCount).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const later = await client.receiveMessages();
    expect(later.receivedMessageItems).toHaveLength(1);
    expect(
      JSON.parse(Buffer.from(later.receivedMessageItems[0]?.messageText ?? '', 'base64').toString('utf8')),
    ).toEqual({ v: 1, eventId: 'evt-later' });
  });

  it('a queue it cannot reach answers delivery_unavailable', async () => {
    const queue = createStorageEventQueue(
      {
        ...config,
        queue: {
          connectionString:
            'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;',
        },
      },
      { operationTimeoutMs: 2_000, setupTimeoutMs: 2_000 },
    );
    const error = await queue.send({ v: 1, eventId: 'x' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'delivery_unavailable', status: 503, retryable: true, retryAfterSeconds: 2 });
  });
});
