/**
 * The reconciler (docs/async-delivery.md#reconciler): a record that is not final (`queued`, `running`,
 * `retrying`) may be left without a queue message, and then nothing ever applies it: a crash between storing
 * the record and sending its message at acceptance, an undo that failed, a crash during a replay, a poisoned
 * message whose poison handler failed too, a Table outage longer than the host's retries. A timer
 * (functions/referral-update-reconciler.ts) runs this every 5 minutes: it lists the non-final records and sends
 * a new message `{ v: 1, eventId }` (no delay) for each one that is stale, i.e. that a live message would have
 * moved on by now.
 *
 * It writes nothing to the records: the worker does, when the message arrives. A duplicate message is harmless
 * (the worker ends at a final record, and applies an event once through its idempotency claim), so several
 * instances running the same occurrence, or a message that was merely slow, cost one extra attempt at most.
 */
import { AdapterError } from '../core/errors.js';
import { type DeliveryRecord, type DeliveryState, FINAL_STATES } from '../delivery/store.js';
import { type EventApp, type Invocation, LEASE_MARGIN_MS } from './process-event.js';

/**
 * How long past its due time a non-final record must be before it is deemed to have no message: the Functions
 * host keeps a received queue message invisible for 10 minutes while its function runs, and a crashed host's
 * message reappears only after them (docs/azure-functions.md#storage-queue-triggers, peek-lock; the local host
 * does the same), so a record younger than that past its due time may still have a live message. A duplicate
 * message is harmless anyway (the worker ends at a final record and applies an event once through its
 * idempotency claim): the margin only avoids needless ones.
 */
export const STALE_AFTER_MS = 10 * 60_000;

/** At most this many records are examined per run; the next run (5 minutes later) goes on. */
const MAX_RECORDS_PER_RUN = 1_000;

/** A run's time bound: well within the timer's period and the host's function timeout. */
const RUN_TIMEOUT_MS = 60_000;

const PAGE_SIZE = 100;

const ACTIVE_STATES = ['queued', 'retrying', 'running'] as const satisfies readonly DeliveryState[];
type ActiveState = (typeof ACTIVE_STATES)[number];

export interface ReconcileClock {
  /** Epoch ms. */
  now(): number;
}

export interface ReconcileOptions {
  maxRecords?: number;
  timeoutMs?: number;
}

export interface ReconcileSummary {
  examined: number;
  resent: number;
  byState: Record<ActiveState, { examined: number; resent: number }>;
  /** True when the run stopped at its bound (records or time) before listing everything. */
  truncated: boolean;
}

const SYSTEM_CLOCK: ReconcileClock = { now: () => Date.now() };

function before(iso: string | null, limit: number): boolean {
  if (iso === null) return true;
  const time = Date.parse(iso);
  return Number.isNaN(time) || time < limit;
}

/** Whether the record has most likely no live message left (see {@link STALE_AFTER_MS}). */
function isStale(record: DeliveryRecord, now: number, budgetMs: number): boolean {
  if (FINAL_STATES.includes(record.state)) return false;
  switch (record.state) {
    case 'queued':
      // A replayed record has attempts > 0 and acceptedAt reset at replay: both must be old.
      return before(record.acceptedAt, now - STALE_AFTER_MS) && before(record.lastAttemptAt, now - STALE_AFTER_MS);
    case 'retrying':
      // Every writer of `retrying` sets nextAttemptAt; without it, the last attempt is the due time.
      return before(record.nextAttemptAt ?? record.lastAttemptAt, now - STALE_AFTER_MS);
    case 'running':
      return before(record.lastAttemptAt, now - (budgetMs + LEASE_MARGIN_MS + STALE_AFTER_MS));
    default:
      return false;
  }
}

export async function reconcileDeliveries(
  logger: Invocation,
  app: Pick<EventApp, 'runtime'>,
  clock: ReconcileClock = SYSTEM_CLOCK,
  options: ReconcileOptions = {},
): Promise<ReconcileSummary> {
  const { maxRecords = MAX_RECORDS_PER_RUN, timeoutMs = RUN_TIMEOUT_MS } = options;
  const summary: ReconcileSummary = {
    examined: 0,
    resent: 0,
    byState: {
      queued: { examined: 0, resent: 0 },
      retrying: { examined: 0, resent: 0 },
      running: { examined: 0, resent: 0 },
    },
    truncated: false,
  };
  const line = (level: string, logCode: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ event: 'referral-update-reconciler', level, logCode, ...extra });
  let runtime: ReturnType<EventApp['runtime']>;
  try {
    runtime = app.runtime();
  } catch (error) {
    logger.error(line('error', 'DELIVERY_RECONCILE_FAILED', { cause: causeOf(error) }));
    return summary;
  }
  const delivery = runtime.delivery;
  if (!delivery) {
    logger.log(line('info', 'DELIVERY_NOT_CONFIGURED'));
    return summary;
  }
  const { store, queue } = delivery;
  const budgetMs = runtime.config.retry.budgetMs;
  const abortSignal = AbortSignal.timeout(timeoutMs);
  const now = clock.now();
  try {
    for (const state of ACTIVE_STATES) {
      let continuationToken: string | undefined;
      do {
        const remaining = maxRecords - summary.examined;
        if (remaining <= 0 || abortSignal.aborted) {
          summary.truncated = true;
          break;
        }
        const page = await store.list(
          { state, top: Math.min(PAGE_SIZE, remaining), ...(continuationToken ? { continuationToken } : {}) },
          { abortSignal },
        );
        for (const record of page.items.slice(0, remaining)) {
          summary.examined++;
          summary.byState[state].examined++;
          if (!isStale(record, now, budgetMs)) continue;
          await queue.send({ v: 1, eventId: record.eventId }, { abortSignal });
          summary.resent++;
          summary.byState[state].resent++;
        }
        continuationToken = page.continuationToken;
      } while (continuationToken);
    }
  } catch (error) {
    logger.error(
      line('error', 'DELIVERY_RECONCILE_FAILED', {
        ...counts(summary),
        cause: causeOf(error),
      }),
    );
    return summary;
  }
  logger.log(line('info', summary.truncated ? 'DELIVERY_RECONCILE_PARTIAL' : 'DELIVERY_RECONCILED', counts(summary)));
  return summary;
}

function counts(summary: ReconcileSummary): Record<string, unknown> {
  return { examined: summary.examined, resent: summary.resent, byState: summary.byState };
}

function causeOf(error: unknown): string {
  return error instanceof AdapterError ? error.code : error instanceof Error ? error.name : 'unknown';
}
