/**
 * The decisions of the read → plan → write loop that one event (./update-referral.ts) and a batch of events
 * (./referral-batch.ts) share: back off and retry after a transient failure, re-read after a 412/409, and
 * whether a failed PUT may still land. The loops own their reads, plans and answers; these own the waits.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { anySignal } from '../core/abort.js';
import { AdapterError, isAdapterError } from '../core/errors.js';
import { backoffDelay, type Deadline } from '../core/retry.js';
import type { RequestContext, WriteResult } from '../partner-center/client.js';
import type { UpdateStats } from '../telemetry/event-record.js';
import { claimedElsewhere } from './ordering-record.js';

export interface WriteLoopOptions {
  referralId: string;
  retry: Config['retry'];
  random?: (() => number) | undefined;
  /** Filled in as the loop runs: `retries`, `conflicts`, `lastUpstreamStatus`. */
  stats: UpdateStats;
  /** The loop's budget: a wait that does not fit in it is not started. */
  deadline: Deadline;
  /** The deadline of the event(s): it ends every wait. */
  abortSignal?: AbortSignal | undefined;
  /** `MS-CorrelationId` of every upstream call of the loop. */
  correlationId: string;
  /** The error when the loop's budget has run out before a call. */
  budgetRanOut: () => AdapterError;
}

export interface WriteLoop {
  /**
   * The context of one upstream call (counted in `stats`). `putBy` (epoch ms): a claimed PUT must not run past its
   * ordering claim, so that bound covers everything the call waits for (the token, a 401's second attempt), not
   * only the wire; a claim that left it no time throws, with nothing sent (docs/ordering.md).
   */
  requestContext(putBy?: number): RequestContext;
  /** Another event's live ordering claim is on a field: back off (`waits` so far) or throw `409 conflict`. */
  waitForClaim(waits: number): Promise<void>;
  /** Records a PUT's answer in `stats`: true when it was written, false after a 412/409 (one more conflict). */
  written(write: WriteResult): write is Extract<WriteResult, { kind: 'written' }>;
  /** After a read or write failed: throws what ends the loop, or waits out the backoff before the next read. */
  retryAfterFailure(error: unknown): Promise<void>;
  /** After a 412/409 (counted in `stats.conflicts`): throws `conflict`, or waits out the backoff before the next read. */
  retryAfterConflict(): Promise<void>;
}

export function writeLoop(options: WriteLoopOptions): WriteLoop {
  const { referralId, retry, stats, deadline, abortSignal, correlationId } = options;
  // Every event's budget is the same, so the earliest expiry is the oldest event: its start, on admission's clock.
  const since = performance.now() - (Date.now() - (deadline.expiresAt - retry.budgetMs));
  const backoff = (attempt: number) => backoffDelay(attempt, { ...retry, random: options.random });
  const wait = async (delay: number, onAbort: () => AdapterError) => {
    try {
      await sleep(delay, undefined, abortSignal ? { signal: abortSignal } : {});
    } catch (error) {
      if (abortSignal?.aborted) throw onAbort();
      throw error;
    }
  };
  return {
    requestContext(putBy) {
      const remaining = deadline.remaining();
      if (remaining <= 0 || abortSignal?.aborted) throw options.budgetRanOut();
      const claimLeft = putBy === undefined ? undefined : putBy - Date.now();
      if (claimLeft !== undefined && claimLeft <= 0) {
        // The claim was written too slowly to leave its PUT any time: nothing was sent; claim again.
        throw new AdapterError(
          'upstream_timeout',
          `The ordering claim on referral ${referralId} left no time to write.`,
          {
            extensions: { referralId },
          },
        );
      }
      stats.upstreamCalls++;
      const signal = claimLeft === undefined ? abortSignal : anySignal(abortSignal, AbortSignal.timeout(claimLeft));
      return {
        correlationId,
        since,
        timeoutMs: Math.min(retry.requestTimeoutMs, remaining, claimLeft ?? Number.POSITIVE_INFINITY),
        ...(signal ? { abortSignal: signal } : {}),
        observe: (durationMs, status) => {
          stats.upstreamDurationsMs.push(durationMs);
          if (status === 429) stats.throttles++;
        },
      };
    },
    async waitForClaim(waits) {
      const delay = backoff(waits - 1);
      const busy = () => claimedElsewhere(referralId);
      if (delay >= deadline.remaining() || abortSignal?.aborted) throw busy();
      await wait(delay, busy);
    },
    written(write): write is Extract<WriteResult, { kind: 'written' }> {
      if (write.kind === 'written') {
        stats.lastUpstreamStatus = 200;
        return true;
      }
      stats.lastUpstreamStatus = write.upstreamStatus;
      stats.conflicts++;
      return false;
    },
    async retryAfterFailure(error) {
      if (!isAdapterError(error)) throw error;
      stats.lastUpstreamStatus = error.upstreamStatus ?? stats.lastUpstreamStatus;
      if (!error.retryable) throw error;
      // `stats.retries` counts the retries made (the log line's `retries`), so it grows only when one starts.
      const attempt = stats.retries + 1;
      if (attempt > retry.maxRetries) throw withRetryAfter(error, backoff(attempt));
      const retryAfterMs = (error.retryAfterSeconds ?? 0) * 1000;
      const delay = Math.max(backoff(attempt - 1), retryAfterMs);
      // A Retry-After above the backoff cap, or past the budget, is not waited out while the caller's
      // connection is held: the caller gets it passed on and comes back then.
      if (retryAfterMs > retry.maxDelayMs || delay >= deadline.remaining() || abortSignal?.aborted) {
        throw withRetryAfter(error, delay);
      }
      await wait(delay, () => withRetryAfter(error, delay));
      stats.retries = attempt;
    },
    async retryAfterConflict() {
      // Another writer got there first.
      const delay = backoff(stats.conflicts - 1);
      const conflict = () =>
        new AdapterError(
          'conflict',
          `Referral ${referralId} changed under each of ${stats.conflicts} write attempts; retry the event.`,
          { retryAfterSeconds: 1, upstreamStatus: stats.lastUpstreamStatus, extensions: { referralId } },
        );
      if (stats.conflicts > retry.maxConflictRetries || delay >= deadline.remaining() || abortSignal?.aborted) {
        throw conflict();
      }
      await wait(delay, conflict);
    },
  };
}

/** A PUT that failed in any way may have been sent: it may land (only a 412/401/404/422 says otherwise). */
export function mayHaveLanded(error: unknown): boolean {
  return !(isAdapterError(error) && !error.retryable);
}

/** The same error, telling the caller when to come back (only retryable errors reach here). */
export function withRetryAfter(error: AdapterError, delayMs: number): AdapterError {
  if (error.retryAfterSeconds !== undefined) return error;
  return new AdapterError(error.code, error.message, {
    retryAfterSeconds: Math.max(1, Math.ceil(delayMs / 1000)),
    extensions: error.extensions,
    upstreamStatus: error.upstreamStatus,
    cause: error.cause,
  });
}
