/**
 * The delivery queue in Azure Storage Queues (`@azure/storage-queue`, loaded on first use): docs/async-delivery.md.
 *
 * Messages are sent with the SDK before the `202` is answered (an output binding could not report a failure in
 * time), as base64 of their JSON: the Functions queue trigger expects base64 by default
 * (https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json). In Azure the
 * client uses the function app's identity-based connection (`AzureWebJobsStorage__queueServiceUri`, role
 * Storage Queue Data Contributor); locally and in tests a connection string, e.g. Azurite's. The queue and its
 * poison queue (`<name>-poison`, where the host moves a message after `maxDequeueCount` failures) are created
 * once, on first use. Any failure is `delivery_unavailable` (503, retryable).
 */
import { managedIdentityCredential } from '../auth/managed-identity.js';
import type { DeliveryConfig } from '../config.js';
import { abortable, boundedSignal } from '../core/abort.js';
import { storageFailure } from '../core/errors.js';
import { sharedUntilFailure } from '../core/lazy.js';
import { type EventQueue, MAX_MESSAGE_DELAY_SECONDS } from './store.js';

export interface StorageQueueOptions {
  /** Upper bound for one send. Default 10 s. */
  operationTimeoutMs?: number;
  /** Upper bound for creating the queues on first use: shared by every waiting call. Default 10 s. */
  setupTimeoutMs?: number;
}

export type QueueDeliveryConfig = Pick<DeliveryConfig, 'queueName' | 'poisonQueueName'> & {
  queue: NonNullable<DeliveryConfig['queue']>;
};

const queueError = storageFailure(
  'delivery_unavailable',
  'The delivery queue (Azure Storage Queues)',
  'DELIVERY_QUEUE_UNAVAILABLE',
);

/** The message as the trigger reads it: base64 of its JSON. */
export function encodeMessage(message: unknown): string {
  return Buffer.from(JSON.stringify(message), 'utf8').toString('base64');
}

export function createStorageEventQueue(config: QueueDeliveryConfig, bounds: StorageQueueOptions = {}): EventQueue {
  const { operationTimeoutMs = 10_000, setupTimeoutMs = 10_000 } = bounds;
  const names = { queue: config.queueName, poison: config.poisonQueueName };
  const getClient = sharedUntilFailure(async () => {
    const { QueueServiceClient } = await import('./storage-queue.js');
    const { queue } = config;
    const options = { retryOptions: { maxTries: 2, retryDelayInMs: 100 } };
    const service =
      'connectionString' in queue
        ? QueueServiceClient.fromConnectionString(queue.connectionString, options)
        : new QueueServiceClient(queue.queueServiceUri, await managedIdentityCredential(queue.clientId), options);
    const abortSignal = AbortSignal.timeout(setupTimeoutMs);
    await Promise.all([
      service.getQueueClient(names.poison).createIfNotExists({ abortSignal }),
      service.getQueueClient(names.queue).createIfNotExists({ abortSignal }),
    ]);
    return service.getQueueClient(names.queue);
  });

  return {
    async send(message, options = {}) {
      const bound = boundedSignal(operationTimeoutMs, options.abortSignal);
      const { signal: abortSignal } = bound;
      const delay = Math.min(MAX_MESSAGE_DELAY_SECONDS, Math.max(0, Math.ceil(options.delaySeconds ?? 0)));
      try {
        const queue = await abortable(getClient(), abortSignal);
        await queue.sendMessage(encodeMessage(message), {
          visibilityTimeout: delay,
          messageTimeToLive: -1,
          abortSignal,
        });
      } catch (error) {
        throw queueError(error);
      } finally {
        bound.release();
      }
    },
  };
}
