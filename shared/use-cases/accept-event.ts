/**
 * Accepting an event for asynchronous delivery (docs/async-delivery.md): the step of the pipeline
 * (./process-event.ts) that replaces steps 4 to 8 when the caller asked for `Prefer: respond-async` or
 * `?async=true`. Everything decided without Partner Center has been decided before (size, signature,
 * contract); the event is then stored and queued, and only when both succeeded the answer is `202` with the
 * status URL. Nothing is half-accepted: a failed send undoes the stored record, and the answer is a retryable `503`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { AdapterError, isAdapterError } from '../core/errors.js';
import type { UpdateEvent } from '../core/update.js';
import type { DeliveryRecord, QueuedEvent } from '../delivery/store.js';
import { eventFingerprint } from '../idempotency/store.js';
import { acceptedResponse, type DeliveryRuntime } from './async-delivery.js';
import { afterDeadline, type EventDeadline } from './deadline.js';
import type { Answered, EventRuntime } from './process-event.js';

/** Seconds a caller waits before sending again when the store or the queue did not answer. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

export interface AcceptContext {
  /** The POST's absolute URL: the status URL has its origin. */
  requestUrl: string;
  correlationId: string;
  deadline: EventDeadline;
  /** The current time (epoch ms); `Date.now` unless given (tests). */
  now?: () => number;
}

/** The event with its id: the caller's, or a new UUID (returned in the `202`). */
export function withEventId(event: UpdateEvent): UpdateEvent & { eventId: string } {
  return { ...event, eventId: event.eventId ?? randomUUID() };
}

/** The store and the queue, or `503 async_unavailable` (the memory store: IDEMPOTENCY_STORE=memory). */
export function deliveryOf(runtime: EventRuntime): DeliveryRuntime {
  if (runtime.delivery) return runtime.delivery;
  throw new AdapterError(
    'async_unavailable',
    'Asynchronous delivery needs the Table idempotency store and a queue (IDEMPOTENCY_STORE=table); send the event without Prefer: respond-async or ?async=true for a synchronous answer.',
  );
}

/** A store or queue failure as the retryable `503 delivery_unavailable`. */
export function unavailable(error: unknown, what: string): AdapterError {
  if (isAdapterError(error) && error.code === 'delivery_unavailable') return error;
  return new AdapterError('delivery_unavailable', `The event could not be ${what}: retry it.`, {
    retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS,
    cause: error,
  });
}

/**
 * Stores and queues the event, answering `202` with its status URL. A redelivery of the same event (same id,
 * same fingerprint) gets the same status URL whatever its state; the same id for another event is `422`.
 */
export async function acceptAsync(
  accepted: UpdateEvent & { eventId: string },
  runtime: EventRuntime,
  context: AcceptContext,
): Promise<Answered> {
  const delivery = deliveryOf(runtime);
  const { store, queue, config } = delivery;
  const { eventId, referralId } = accepted;
  const fingerprint = eventFingerprint(accepted);
  const now = new Date((context.now ?? Date.now)()).toISOString();
  const queued: QueuedEvent = {
    referralId,
    eventId,
    occurredAt: accepted.occurredAt,
    intent: accepted.intent,
    ...(accepted.stage ? { stage: accepted.stage } : {}),
  };
  const abortSignal = context.deadline.signal;
  const fresh = {
    eventId,
    referralId,
    fingerprint,
    token: randomBytes(18).toString('base64url'),
    acceptedAt: now,
    orderedAt: now,
    event: queued,
  };
  let created: { created: boolean; record: DeliveryRecord };
  let heal = false;
  for (let round = 0; ; round++) {
    try {
      created = await store.create(fresh, { abortSignal });
    } catch (error) {
      throw unavailable(error, 'stored for asynchronous delivery');
    }
    if (!created.created && created.record.fingerprint !== fingerprint) {
      throw new AdapterError(
        'idempotency_key_reused',
        `Event id "${eventId}" was already used for a different event; use a new id for a new event.`,
        { extensions: { referralId } },
      );
    }
    // A first acceptance whose answer was lost may have stored the record without its message: sending again
    // heals it (a duplicate message is harmless: the worker finds the event done, or applies it once). The
    // record is rewritten first, so that the first acceptance, if its own send is failing right now, can no
    // longer undo it (its removal is conditional on the version it created).
    heal = !created.created && created.record.state === 'queued' && created.record.attempts === 0;
    if (!heal) break;
    let bumped: DeliveryRecord | undefined;
    try {
      bumped = await store.update(created.record, {}, { abortSignal });
    } catch (error) {
      throw unavailable(error, 'stored for asynchronous delivery');
    }
    if (bumped) break;
    // Changed meanwhile: taken by the worker (nothing to heal), or undone by the first acceptance (create it again).
    if (round >= 2) throw unavailable(undefined, 'stored for asynchronous delivery');
  }
  const { record } = created;
  if (created.created || heal) {
    try {
      await queue.send({ v: 1, eventId }, { abortSignal });
    } catch (error) {
      if (created.created) {
        await store.remove(record, { abortSignal: afterDeadline(context.deadline) }).catch(() => {});
      }
      throw unavailable(error, 'queued for asynchronous delivery');
    }
  }
  return {
    outcome: { accepted: { status: 202 } },
    response: acceptedResponse(record, context.requestUrl, config, context.correlationId),
  };
}
