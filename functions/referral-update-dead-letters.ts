/**
 * Storage queue trigger on `<queue>-poison`: a message the host gave up on still ends as a visible
 * `dead_lettered` event (docs/async-delivery.md#worker), never as a silent hole.
 */
import { app, type InvocationContext } from '@azure/functions';
import { poisonQueueOf, queueNameOf } from '../shared/config.js';
import { APP } from '../shared/runtime.js';
import { deadLetterEvent } from '../shared/use-cases/dead-letter-event.js';

export async function referralUpdateDeadLetters(message: unknown, context: InvocationContext): Promise<void> {
  await deadLetterEvent(message, context, APP);
}

app.storageQueue('referral-update-dead-letters', {
  queueName: poisonQueueOf(queueNameOf(process.env)),
  connection: 'AzureWebJobsStorage',
  handler: referralUpdateDeadLetters,
});
