/**
 * The poison queue's handler (docs/async-delivery.md): a message the host gave up on (its handler threw
 * `maxDequeueCount` times) still ends as a visible `dead_lettered` event, with last error `poison_message`,
 * unless the event reached a final state meanwhile. A message that is not ours is logged and dropped.
 */
import { POISON_ERROR, parseQueueMessage } from '../delivery/store.js';
import { updateUnlessFinal, type WorkerClock } from './deliver-queued-event.js';
import type { EventApp, Invocation } from './process-event.js';

export async function deadLetterEvent(
  message: unknown,
  logger: Invocation,
  app: Pick<EventApp, 'runtime'>,
  clock: Pick<WorkerClock, 'now'> = { now: () => Date.now() },
): Promise<void> {
  const delivery = app.runtime().delivery;
  const parsed = parseQueueMessage(message);
  const line = (fields: Record<string, unknown>) => JSON.stringify({ event: 'referral-update-dead-letter', ...fields });
  if (!delivery || !parsed) {
    logger.error(line({ logCode: delivery ? 'DELIVERY_POISON_MESSAGE_INVALID' : 'DELIVERY_NOT_CONFIGURED' }));
    return;
  }
  const { eventId } = parsed;
  const abortSignal = AbortSignal.timeout(30_000);
  const record = await delivery.store.get(eventId, { abortSignal });
  if (!record) {
    logger.error(line({ eventId, logCode: 'DELIVERY_EVENT_NOT_FOUND' }));
    return;
  }
  const now = new Date(clock.now()).toISOString();
  const written = await updateUnlessFinal(
    delivery.store,
    record,
    { state: 'dead_lettered', deadLetteredAt: now, nextAttemptAt: null, lastError: { ...POISON_ERROR } },
    abortSignal,
  );
  logger.error(
    line({
      eventId,
      referralId: record.referralId,
      logCode: written ? 'DELIVERY_DEAD_LETTERED_POISON' : 'DELIVERY_POISON_ALREADY_FINAL',
      attempts: record.attempts,
    }),
  );
}
