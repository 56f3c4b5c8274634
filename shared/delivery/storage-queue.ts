/** `@azure/storage-queue` for queue.ts, which imports this module lazily (like idempotency/data-tables.ts). */
export { QueueClient, QueueServiceClient } from '@azure/storage-queue';
