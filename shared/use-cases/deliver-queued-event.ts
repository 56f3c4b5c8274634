/**
 * The queue worker (docs/async-delivery.md): one message `{ v: 1, eventId }` → one attempt at the accepted
 * event, with the same code as a synchronous event (./process-event.ts `applyEvent`: idempotency claim,
 * batching step, per-field ordering, update with its 412 loop), then the event's new state:
 *
 * - a final answer (`< 500`, not 409/429): `succeeded` (200) or `failed` (4xx), the answer kept for the
 *   status URL, the event itself dropped;
 * - a transient one: a new message, invisible until the next attempt (never before the answer's
 *   `Retry-After`), and `retrying`, as long as the next attempt still falls within ASYNC_MAX_AGE_SECONDS
 *   of the acceptance; otherwise `dead_lettered`.
 *
 * The host's own retries of a message (a throw) are kept for crashes. State writes are conditional on the
 * record's version and never overwrite a final state.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { RESPONSE_HEADERS } from '../contract/headers.js';
import type { UpdateEvent } from '../core/update.js';
import {
  type DeliveryChanges,
  type DeliveryError,
  type DeliveryRecord,
  type DeliveryState,
  type DeliveryStore,
  FINAL_STATES,
  MAX_MESSAGE_DELAY_SECONDS,
  parseQueueMessage,
} from '../delivery/store.js';
import type { StoredResponse } from '../idempotency/store.js';
import { type DeliveryAttempt, eventRecord, logEvent, newStats } from '../telemetry/event-record.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { AsyncDeliverySettings } from './async-delivery.js';
import { afterDeadline, eventDeadline } from './deadline.js';
import {
  type ApplyContext,
  applyEvent,
  type EventApp,
  type Invocation,
  isFinal,
  storedAnswer,
} from './process-event.js';

/** A retry's message may become visible this much before its `nextAttemptAt` (clocks, rounding to seconds). */
const EARLY_TOLERANCE_MS = 2_000;

/** The times the worker records and the chance of its jitter, injectable for tests (its deadline runs on real time). */
export interface WorkerClock {
  /** Epoch ms. */
  now(): number;
  /** In [0, 1). */
  random(): number;
}

const SYSTEM_CLOCK: WorkerClock = { now: () => Date.now(), random: Math.random };

/**
 * Seconds until the next attempt after `attempts` attempts: full jitter over the exponential backoff
 * `min(ASYNC_RETRY_MAX_SECONDS, ASYNC_RETRY_MIN_SECONDS × 2^(attempts-1))`, at least 1 second, and never
 * before the answer's `Retry-After`.
 */
export function retryDelaySeconds(
  attempts: number,
  settings: Pick<AsyncDeliverySettings, 'retryMinSeconds' | 'retryMaxSeconds'>,
  retryAfterSeconds: number | undefined,
  random: () => number,
): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 30);
  const cap = Math.min(settings.retryMaxSeconds, settings.retryMinSeconds * 2 ** exponent);
  const jittered = Math.max(1, Math.ceil(random() * cap));
  return Math.min(MAX_MESSAGE_DELAY_SECONDS, Math.max(jittered, Math.ceil(retryAfterSeconds ?? 0)));
}

/**
 * Applies changes unless the record became final meanwhile: the new record, or undefined (gone or final).
 * `overwrite` names final states these changes may still replace.
 */
export async function updateUnlessFinal(
  store: DeliveryStore,
  record: DeliveryRecord,
  changes: DeliveryChanges,
  abortSignal?: AbortSignal,
  overwrite: readonly DeliveryState[] = [],
): Promise<DeliveryRecord | undefined> {
  let current: DeliveryRecord | undefined = record;
  while (current && (!FINAL_STATES.includes(current.state) || overwrite.includes(current.state))) {
    const updated = await store.update(current, changes, { abortSignal });
    if (updated) return updated;
    current = await store.get(record.eventId, { abortSignal });
  }
  return undefined;
}

/**
 * Handles one message of the queue. Returns when the message is done with (applied, rescheduled with a
 * message of its own, given up, or not ours); throws on an unexpected failure, so that the host delivers
 * the message again (and, after `maxDequeueCount` attempts, moves it to the poison queue).
 */
export async function deliverQueuedEvent(
  message: unknown,
  invocation: Invocation,
  app: EventApp,
  clock: WorkerClock = SYSTEM_CLOCK,
): Promise<void> {
  const telemetry = app.telemetry();
  await telemetry.inInvocation(invocation.traceContext?.traceParent, () =>
    attempt(message, invocation, app, telemetry, clock),
  );
}

async function attempt(
  message: unknown,
  logger: Invocation,
  app: EventApp,
  telemetry: Telemetry,
  clock: WorkerClock,
): Promise<void> {
  const started = performance.now();
  const runtime = app.runtime();
  const delivery = runtime.delivery;
  const parsed = parseQueueMessage(message);
  if (!delivery || !parsed) {
    logger.warn(
      JSON.stringify({
        event: 'referral-update-delivery',
        logCode: delivery ? 'DELIVERY_MESSAGE_INVALID' : 'DELIVERY_NOT_CONFIGURED',
      }),
    );
    return;
  }
  const { store, queue, config } = delivery;
  const deadline = eventDeadline(runtime.config.retry.budgetMs);
  const { eventId } = parsed;
  let record = await store.get(eventId, { abortSignal: deadline.signal });
  for (;;) {
    if (!record) {
      logger.warn(JSON.stringify({ event: 'referral-update-delivery', eventId, logCode: 'DELIVERY_EVENT_NOT_FOUND' }));
      return;
    }
    if (FINAL_STATES.includes(record.state)) return;
    // A duplicate message (a redelivery's re-send, a crash after a send) for an event waiting to retry: the
    // retry's own message is due at `nextAttemptAt` (it was sent before `retrying` was written), so this one
    // ends here rather than start a second chain of attempts that would not wait out the Retry-After.
    if (record.state === 'retrying' && record.nextAttemptAt !== null) {
      if (Date.parse(record.nextAttemptAt) - clock.now() > EARLY_TOLERANCE_MS) return;
    }
    if (!record.event) {
      // Not final yet without its event: no writer leaves a record so; nothing to apply.
      logger.error(JSON.stringify({ event: 'referral-update-delivery', eventId, logCode: 'DELIVERY_EVENT_MISSING' }));
      return;
    }
    const running = await store.update(
      record,
      { state: 'running', attempts: record.attempts + 1, lastAttemptAt: iso(clock.now()), nextAttemptAt: null },
      { abortSignal: deadline.signal },
    );
    if (running) {
      record = running;
      break;
    }
    record = await store.get(eventId, { abortSignal: deadline.signal });
  }
  const queued = record.event as NonNullable<DeliveryRecord['event']>;
  // Without its own occurredAt, an accepted event is ordered by the time it was first accepted.
  const event: UpdateEvent = { ...queued, occurredAt: queued.occurredAt ?? record.orderedAt, dryRun: false };
  const context: ApplyContext = {
    correlationId: randomUUID(),
    logger,
    stats: newStats(),
    deadline,
    fingerprint: record.fingerprint,
    idempotency: 'none',
  };
  const answered = await applyEvent(event, runtime, context);
  const { response } = answered;
  const recording = afterDeadline(deadline);
  let changes: DeliveryChanges;
  let summary: DeliveryAttempt;
  if (isFinal(response.status)) {
    const succeeded = response.status < 300;
    changes = {
      state: succeeded ? 'succeeded' : 'failed',
      answer: storedAnswer(response),
      changedPaths: succeeded ? changedPathsOf(response.body) : null,
      event: null,
      nextAttemptAt: null,
      ...(succeeded ? {} : { lastError: errorOf(response) }),
    };
    summary = { attempt: record.attempts, state: changes.state as string };
  } else {
    const lastError = errorOf(response);
    const now = clock.now();
    const delay = retryDelaySeconds(record.attempts, config, retryAfterOf(response), clock.random);
    const nextAttempt = now + delay * 1000;
    if (nextAttempt < Date.parse(record.acceptedAt) + config.maxAgeSeconds * 1000) {
      await queue.send({ v: 1, eventId }, { delaySeconds: delay, abortSignal: recording });
      changes = { state: 'retrying', nextAttemptAt: iso(nextAttempt), lastError };
      summary = { attempt: record.attempts, state: 'retrying', retryInSeconds: delay };
    } else {
      changes = { state: 'dead_lettered', deadLetteredAt: iso(now), nextAttemptAt: null, lastError };
      summary = { attempt: record.attempts, state: 'dead_lettered' };
    }
  }
  // What Partner Center answered is the truth: it replaces a `dead_lettered` that the poison queue's handler
  // wrote while this attempt ran (its write may have landed), never a `succeeded` or `failed`.
  let superseded = false;
  try {
    superseded = !(await updateUnlessFinal(
      store,
      record,
      changes,
      recording,
      changes.state === 'succeeded' || changes.state === 'failed' ? ['dead_lettered'] : [],
    ));
  } catch (error) {
    // The retry's message is sent: it carries the event on, and its attempt replaces the `running` left here.
    // Throwing would make the host deliver this message again at once: a second chain of attempts that ignores
    // the delay. A final state is thrown for: the host's retry then finds the event's stored answer.
    if (changes.state !== 'retrying') throw error;
    logger.warn(JSON.stringify({ event: 'referral-update-delivery', eventId, logCode: 'DELIVERY_RECORD_FAILED' }));
  }
  if (superseded) summary = { ...summary, state: 'superseded' };
  const line = {
    ...eventRecord(
      {
        correlationId: context.correlationId,
        referralId: record.referralId,
        eventId,
        idempotency: context.idempotency,
        stats: context.stats,
        durationMs: performance.now() - started,
      },
      answered.outcome,
    ),
    delivery: summary,
  };
  logEvent(logger, line, answered.outcome);
  telemetry.recordEvent(line, context.stats.upstreamDurationsMs);
}

const iso = (epochMs: number) => new Date(epochMs).toISOString();

/** The paths of a 200 answer's `changes`. */
function changedPathsOf(body: string): string[] {
  try {
    const parsed = JSON.parse(body) as { changes?: Array<{ path?: unknown }> };
    return (parsed.changes ?? []).flatMap((change) => (typeof change.path === 'string' ? [change.path] : []));
  } catch {
    return [];
  }
}

/** The code and status of a problem answer (never its detail, which may quote upstream text). */
function errorOf(response: StoredResponse): DeliveryError {
  try {
    const { code } = JSON.parse(response.body) as { code?: unknown };
    return { code: typeof code === 'string' ? code : 'unknown', status: response.status };
  } catch {
    return { code: 'unknown', status: response.status };
  }
}

/** The answer's `Retry-After` in seconds, when it has one. */
function retryAfterOf(response: StoredResponse): number | undefined {
  const header = Object.entries(response.headers).find(
    ([name]) => name.toLowerCase() === RESPONSE_HEADERS.retryAfter.toLowerCase(),
  )?.[1];
  const seconds = header === undefined ? Number.NaN : Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
