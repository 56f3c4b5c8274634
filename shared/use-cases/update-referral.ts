/**
 * Use case: apply one update event to one referral.
 *
 * read (GET + eTag) → plan (rules + merge, pure) → write (PUT + If-Match), in one loop that owns every
 * retry and the time budget:
 * - 412/409 on the PUT: another writer got there first. Re-read, re-check the rules against the new
 *   state, re-apply the *intent* (never the stale snapshot), write again; bounded, with jitter.
 * - A retryable failure (429, 5xx, network, timeout) on the GET: back off (honouring `Retry-After`) and
 *   read again. On the PUT the outcome is unknown (the write may have landed): never resend blindly,
 *   go back to the read. If the fresh referral already holds every requested value, the event succeeded.
 *
 * `abortSignal` is the event's deadline (started by the caller when the event started): it bounds every
 * request, token acquisition and backoff wait of the loop. The loop's own budget (`retry.budgetMs` from
 * its start) stays as the inner bound that decides whether a wait still fits.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { AdapterError, isAdapterError } from '../core/errors.js';
import type { Change } from '../core/merge.js';
import { planUpdate } from '../core/plan-update.js';
import type { JsonObject } from '../core/referral.js';
import { backoffDelay, Deadline } from '../core/retry.js';
import type { Outcome, UpdateEvent, UpdateResult } from '../core/update.js';
import type { PartnerCenterClient, RequestContext } from '../partner-center/client.js';
import { newStats, type UpdateStats } from '../telemetry/event-record.js';

export interface UpdateDependencies {
  client: PartnerCenterClient;
  retry: Config['retry'];
  random?: () => number;
}

export interface UpdateOptions {
  /** `MS-CorrelationId` of every upstream call. */
  correlationId: string;
  /** Filled in as the loop runs (for the event record). */
  stats?: UpdateStats;
  /** The event's deadline. */
  abortSignal?: AbortSignal;
  /**
   * When the event's budget runs out (epoch ms; the instant `abortSignal` aborts), so that the decisions
   * whether a wait or a request still fits use the event's clock. Default: `retry.budgetMs` from now.
   */
  expiresAt?: number;
}

export async function updateReferral(
  event: UpdateEvent,
  deps: UpdateDependencies,
  options: UpdateOptions,
): Promise<UpdateResult> {
  const { referralId, intent } = event;
  const { retry, client } = deps;
  const { correlationId, abortSignal } = options;
  const stats = options.stats ?? newStats();
  const now = Date.now();
  const deadline = new Deadline(options.expiresAt === undefined ? retry.budgetMs : options.expiresAt - now, now);
  const budgetRanOut = () =>
    new AdapterError('upstream_timeout', `The time budget of ${retry.budgetMs} ms for this event ran out.`, {
      extensions: { referralId },
    });
  /** Waits `delay` ms, or answers `error` (with its Retry-After) if the event's deadline comes first. */
  const wait = async (delay: number, onAbort: () => AdapterError) => {
    try {
      await sleep(delay, undefined, abortSignal ? { signal: abortSignal } : {});
    } catch (error) {
      if (abortSignal?.aborted) throw onAbort();
      throw error;
    }
  };
  const backoff = (attempt: number) => backoffDelay(attempt, { ...retry, random: deps.random });
  /** Changes of a PUT whose outcome is unknown (timeout, reset, 5xx): it may have landed. */
  let unconfirmedWrite: Change[] | undefined;

  const requestContext = (): RequestContext => {
    const remaining = deadline.remaining();
    if (remaining <= 0 || abortSignal?.aborted) throw budgetRanOut();
    stats.upstreamCalls++;
    return {
      correlationId,
      timeoutMs: Math.min(retry.requestTimeoutMs, remaining),
      ...(abortSignal ? { abortSignal } : {}),
      observe: (durationMs, status) => {
        stats.upstreamDurationsMs.push(durationMs);
        if (status === 429) stats.throttles++;
      },
    };
  };
  const answer = (outcome: Outcome, referral: JsonObject, eTag: string | null, changes: Change[]): UpdateResult => ({
    referralId,
    ...(event.eventId === undefined ? {} : { eventId: event.eventId }),
    outcome,
    status: referral.status ?? null,
    substatus: referral.substatus ?? null,
    eTag,
    changes,
  });

  for (;;) {
    /** Set while our PUT is in flight: a failure then leaves the outcome unknown. */
    let writing: Change[] | undefined;
    try {
      const read = await client.getReferral(referralId, requestContext());
      stats.lastUpstreamStatus = 200;
      const plan = planUpdate(referralId, read.referral, intent);
      if (event.dryRun) {
        const changes = plan.kind === 'write' ? plan.changes : [];
        const wouldPut = plan.kind === 'write' ? { ifMatch: read.eTag, body: plan.body } : null;
        return { ...answer('dry-run', read.referral, read.eTag, changes), wouldPut };
      }
      if (plan.kind === 'unchanged') {
        // Either nothing to do, or our earlier unconfirmed PUT did land (the lost-response case).
        return unconfirmedWrite
          ? answer('updated', read.referral, read.eTag, unconfirmedWrite)
          : answer('unchanged', read.referral, read.eTag, []);
      }
      writing = plan.changes;
      const write = await client.putReferral(referralId, plan.body, read.eTag, requestContext());
      if (write.kind === 'written') {
        stats.lastUpstreamStatus = 200;
        return answer('updated', write.referral ?? plan.body, write.eTag ?? null, plan.changes);
      }
      stats.lastUpstreamStatus = write.upstreamStatus;
      stats.conflicts++;
      // A 412 proves our PUT was not applied; any earlier unconfirmed one is settled by the next read.
    } catch (error) {
      if (!isAdapterError(error)) throw error;
      stats.lastUpstreamStatus = error.upstreamStatus ?? stats.lastUpstreamStatus;
      if (!error.retryable) throw error;
      if (writing) unconfirmedWrite = writing;
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
      continue;
    }
    // Reached only after a 412/409: another writer got there first.
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
  }
}

/** The same error, telling the caller when to come back (only retryable errors reach here). */
function withRetryAfter(error: AdapterError, delayMs: number): AdapterError {
  if (error.retryAfterSeconds !== undefined) return error;
  return new AdapterError(error.code, error.message, {
    retryAfterSeconds: Math.max(1, Math.ceil(delayMs / 1000)),
    extensions: error.extensions,
    upstreamStatus: error.upstreamStatus,
    cause: error.cause,
  });
}
