/**
 * Storage queue trigger on `<queue>-poison`: a message the host gave up on still ends as a visible
 * `dead_lettered` event (docs/async-delivery.md#worker), never as a silent hole.
 */
import { app, type InvocationContext } from '@azure/functions';
import { APP } from '../shared/runtime.js';
import { POISON_QUEUE_SUFFIX, queueNameOf } from '../shared/use-cases/async-delivery.js';
import { deadLetterEvent } from '../shared/use-cases/dead-letter-event.js';

export async function referralUpdateDeadLetters(message: unknown, context: InvocationContext): Promise<void> {
  await deadLetterEvent(message, context, APP);
}

app.storageQueue('referral-update-dead-letters', {
  queueName: `${queueNameOf(process.env)}${POISON_QUEUE_SUFFIX}`,
  connection: 'AzureWebJobsStorage',
  handler: referralUpdateDeadLetters,
});
