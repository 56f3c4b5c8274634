/**
 * Storage queue trigger: applies the events accepted with `202`, one message `{ v: 1, eventId }` at a time
 * (docs/async-delivery.md#worker). Retries with backoff are messages of their own; a throw is left to the
 * host's retries, then its poison queue (functions/referral-update-dead-letters.ts).
 */
import { app, type InvocationContext } from '@azure/functions';
import { queueNameOf } from '../shared/config.js';
import { APP, checkConfigurationAtStartup } from '../shared/runtime.js';
import { deliverQueuedEvent } from '../shared/use-cases/deliver-queued-event.js';

export async function referralUpdateWorker(message: unknown, context: InvocationContext): Promise<void> {
  await deliverQueuedEvent(message, context, APP);
}

checkConfigurationAtStartup();

app.storageQueue('referral-update-worker', {
  queueName: queueNameOf(process.env),
  connection: 'AzureWebJobsStorage',
  handler: referralUpdateWorker,
});
