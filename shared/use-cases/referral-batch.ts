/**
 * Group commit per referral (docs/ordering.md#batches): the events for one referral that wait behind each
 * other in this instance are applied as one batch, with one read and one write.
 *
 * - **The queue.** Each referral has a queue of waiting events. A *turn* takes the referral's
 *   {@link KeyedLock} (so a turn is still "one update per referral at a time in this instance"), takes the
 *   waiting events and applies them. The first event to arrive on an idle referral is alone in its turn
 *   and runs as before group commit; the events that arrive while a turn runs wait for the next one, which
 *   takes them all (up to {@link BATCH_CAP}) as one batch.
 * - **What is batched.** Only events without `occurredAt` that are not dry runs. An event with
 *   `occurredAt` (its per-field ordering claims, docs/ordering.md) or a dry run is a turn of its own, in
 *   arrival order; a batch is a run of consecutive batchable events.
 * - **A batch** is planned in arrival order against one read (core/plan-batch.ts), written with one PUT +
 *   If-Match, and each event is answered its own changes and outcome, with the status, substatus and eTag
 *   the batch left. An event the rules refuse gets its own 422 and the others go on. A `412` re-reads and
 *   re-plans the whole batch; a PUT whose outcome is unknown is settled by the re-read, as for one event.
 *   A transient failure (429, 5xx, timeouts) given up on answers every event of the batch the same
 *   retryable error. A PUT Partner Center refuses (`upstream_rejected`) is not blamed on the batch: its
 *   events are applied again one by one, so that only the event whose value Partner Center refuses fails.
 * - **Deadlines.** A waiting event leaves the queue when its own deadline runs out (504 upstream_timeout,
 *   as before). A batch runs under the earliest deadline of its events: none of them is answered, nor
 *   can have its write land, after its own deadline (docs/behaviour.md).
 */
import { anySignal } from '../core/abort.js';
import { AdapterError } from '../core/errors.js';
import { type BatchPlan, batchHolds, planBatch } from '../core/plan-batch.js';
import type { JsonObject } from '../core/referral.js';
import { Deadline } from '../core/retry.js';
import type { UpdateEvent, UpdateResult } from '../core/update.js';
import { asAdapterError } from '../http/response.js';
import type { RequestContext } from '../partner-center/client.js';
import { newStats, type UpdateStats } from '../telemetry/event-record.js';
import type { EventDeadline } from './deadline.js';
import { KeyedLock } from './keyed-lock.js';
import type { UpdateDependencies } from './update-referral.js';
import { mayHaveLanded, writeLoop } from './write-loop.js';

/** The most events one batch takes; the others wait for the next turn. */
export const BATCH_CAP = 100;

/** One event's answer: its result, or the error it is refused with. */
export type BatchSettled = { ok: UpdateResult } | { error: AdapterError };

/** One event waiting for its referral's turn. */
export interface BatchMember {
  event: UpdateEvent;
  deadline: EventDeadline;
  correlationId: string;
  /** The event's own stats: a batch adds the calls it made for all its events to each. */
  stats: UpdateStats;
  /** The event applied alone: ordering, then the update (process-event's `inOrder` and `update`). */
  alone: () => Promise<UpdateResult>;
}

/** Whether an event may share a write with others: no `occurredAt` (no ordering claims), not a dry run. */
export function isBatchable(event: UpdateEvent): boolean {
  return event.occurredAt === undefined && !event.dryRun;
}

interface Waiting {
  member: BatchMember;
  resolve: (result: UpdateResult) => void;
  reject: (error: unknown) => void;
  /** Stops listening for the member's deadline once a turn has taken it. */
  taken: () => void;
}

/** The per-referral queues of one instance (runtime.ts builds one): turns taken on a {@link KeyedLock}. */
export class ReferralQueues {
  /** Per referral: the events waiting for a turn. An entry exists exactly while a turn is scheduled for it. */
  readonly #waiting = new Map<string, Waiting[]>();

  constructor(readonly lock: KeyedLock = new KeyedLock()) {}

  /**
   * Resolves with the member's own result once a turn has applied it (alone or in a batch, by `applyBatch`);
   * rejects with its deadline signal's reason if that aborts while it is still waiting.
   */
  join(
    member: BatchMember,
    applyBatch: (members: readonly BatchMember[]) => Promise<BatchSettled[]>,
  ): Promise<UpdateResult> {
    const { referralId } = member.event;
    const { signal } = member.deadline;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<UpdateResult>((resolve, reject) => {
      const onAbort = () => {
        const queue = this.#waiting.get(referralId);
        const index = queue?.indexOf(entry) ?? -1;
        if (index >= 0) queue?.splice(index, 1);
        reject(signal.reason);
      };
      const entry: Waiting = {
        member,
        resolve,
        reject,
        taken: () => signal.removeEventListener('abort', onAbort),
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const queue = this.#waiting.get(referralId);
      if (queue) queue.push(entry);
      else {
        this.#waiting.set(referralId, [entry]);
        this.#turn(referralId, applyBatch);
      }
    });
  }

  /** How many events wait for the referral's next turn (for tests). */
  waiting(referralId: string): number {
    return this.#waiting.get(referralId)?.length ?? 0;
  }

  /** Schedules a turn behind the referral's current holder of the lock. */
  #turn(referralId: string, applyBatch: (members: readonly BatchMember[]) => Promise<BatchSettled[]>): void {
    let taken: Waiting[] = [];
    const turn = async () => {
      const queue = this.#waiting.get(referralId) ?? [];
      taken = take(queue);
      if (queue.length === 0) this.#waiting.delete(referralId);
      else this.#turn(referralId, applyBatch);
      for (const entry of taken) entry.taken();
      if (taken.length === 0) return;
      const members = taken.map((entry) => entry.member);
      const settled: BatchSettled[] =
        members.length === 1 ? [await settle((members[0] as BatchMember).alone)] : await applyBatch(members);
      taken.forEach((entry, i) => {
        const outcome = settled[i] ?? {
          error: new AdapterError('internal_error', 'The batch left an event unanswered.'),
        };
        if ('ok' in outcome) entry.resolve(outcome.ok);
        else entry.reject(outcome.error);
      });
    };
    this.lock.run(referralId, turn).catch((error: unknown) => {
      for (const entry of taken) entry.reject(error);
    });
  }
}

/**
 * The events of the next turn, taken off the queue: the first one alone when it is not batchable (a dry run,
 * an event with `occurredAt`), else the run of batchable events at the head, up to {@link BATCH_CAP}.
 * Events whose deadline has run out are left to their own abort (they remove themselves).
 */
function take(queue: Waiting[]): Waiting[] {
  const live = queue.filter((entry) => !entry.member.deadline.signal.aborted);
  queue.splice(0, queue.length, ...live);
  const first = queue[0];
  if (!first) return [];
  if (!isBatchable(first.member.event)) return queue.splice(0, 1);
  let n = 1;
  while (n < queue.length && n < BATCH_CAP && isBatchable((queue[n] as Waiting).member.event)) n++;
  return queue.splice(0, n);
}

async function settle(run: () => Promise<UpdateResult>): Promise<BatchSettled> {
  try {
    return { ok: await run() };
  } catch (error) {
    return { error: asAdapterError(error) };
  }
}

/**
 * Applies batchable events for one referral (more than one) with one read and one write, and answers each.
 * A write Partner Center refuses for good (`upstream_rejected`) is retried event by event (`alone`), so that
 * one event's value never fails another; any other failure answers every event the same error.
 */
export async function updateBatch(
  members: readonly BatchMember[],
  deps: Pick<UpdateDependencies, 'client' | 'retry' | 'random'>,
): Promise<BatchSettled[]> {
  const stats = newStats();
  let settled: BatchSettled[];
  try {
    settled = await writeBatch(members, deps, stats);
  } catch (error) {
    const refusal = asAdapterError(error);
    if (refusal.code !== 'upstream_rejected') settled = members.map(() => ({ error: refusal }));
    else {
      addStats(members, stats);
      settled = [];
      for (const member of members) settled.push(await settle(member.alone));
      return settled;
    }
  }
  addStats(members, stats);
  return settled;
}

/** Each event of the batch made the batch's calls (the log line's `attempts`, `retries`, `conflicts`). */
function addStats(members: readonly BatchMember[], stats: UpdateStats): void {
  for (const { stats: own } of members) {
    own.upstreamCalls += stats.upstreamCalls;
    own.retries += stats.retries;
    own.conflicts += stats.conflicts;
    own.throttles += stats.throttles;
    own.upstreamDurationsMs.push(...stats.upstreamDurationsMs);
    own.lastUpstreamStatus = stats.lastUpstreamStatus ?? own.lastUpstreamStatus;
  }
}

/**
 * read → plan the batch → PUT + If-Match, with the retries and 412 loop of updateReferral (./write-loop.ts),
 * under the earliest deadline of the events. Throws what ends the batch for every event.
 */
async function writeBatch(
  members: readonly BatchMember[],
  deps: Pick<UpdateDependencies, 'client' | 'retry' | 'random'>,
  stats: UpdateStats,
): Promise<BatchSettled[]> {
  const { client, retry } = deps;
  const leader = members[0] as BatchMember;
  const { referralId } = leader.event;
  const intents = members.map((m) => m.event.intent);
  const expiresAt = Math.min(...members.map((m) => m.deadline.clock.expiresAt));
  const abortSignal = anySignal(...members.map((m) => m.deadline.signal));
  const now = Date.now();
  const deadline = new Deadline(expiresAt - now, now);
  const budgetRanOut = () =>
    new AdapterError(
      'upstream_timeout',
      `The time budget of the batch of ${members.length} events for referral ${referralId} (the earliest of their budgets of ${retry.budgetMs} ms) ran out.`,
      { extensions: { referralId } },
    );
  const writes = writeLoop({ referralId, retry, random: deps.random, stats, deadline, abortSignal });
  const requestContext = (): RequestContext => {
    const remaining = deadline.remaining();
    if (remaining <= 0 || abortSignal.aborted) throw budgetRanOut();
    stats.upstreamCalls++;
    return {
      // One correlation id for the batch's calls: its first event's.
      correlationId: leader.correlationId,
      timeoutMs: Math.min(retry.requestTimeoutMs, remaining),
      abortSignal,
      observe: (durationMs, status) => {
        stats.upstreamDurationsMs.push(durationMs);
        if (status === 429) stats.throttles++;
      },
    };
  };
  const answers = (plan: BatchPlan, final: JsonObject, eTag: string | null): BatchSettled[] =>
    members.map((member, i) => {
      const planned = plan.events[i];
      if (!planned) return { error: new AdapterError('internal_error', 'The batch plan left an event out.') };
      if (planned.kind === 'refused') return { error: planned.error };
      const { eventId } = member.event;
      return {
        ok: {
          referralId,
          ...(eventId === undefined ? {} : { eventId }),
          outcome: planned.kind === 'changed' ? 'updated' : 'unchanged',
          status: final.status ?? null,
          substatus: final.substatus ?? null,
          eTag,
          changes: planned.kind === 'changed' ? planned.changes : [],
        },
      };
    });

  /** The plan of a PUT whose outcome is unknown (timeout, reset, 5xx): it may have landed. */
  let unconfirmed: BatchPlan | undefined;
  for (;;) {
    let writing: BatchPlan | undefined;
    try {
      const read = await client.getReferral(referralId, requestContext());
      stats.lastUpstreamStatus = 200;
      // Our earlier unconfirmed PUT did land (the referral holds what it wrote): its plan is the answer.
      if (unconfirmed && batchHolds(read.referral, unconfirmed)) return answers(unconfirmed, read.referral, read.eTag);
      const plan = planBatch(referralId, read.referral, intents);
      if (!plan.body) return answers(plan, read.referral, read.eTag);
      const context = requestContext();
      writing = plan;
      const write = await client.writeReferral(referralId, { ...plan, body: plan.body }, read.eTag, context);
      if (writes.written(write)) return answers(plan, write.referral ?? plan.body, write.eTag ?? null);
    } catch (error) {
      if (writing && mayHaveLanded(error)) unconfirmed = writing;
      await writes.retryAfterFailure(error);
      continue;
    }
    // Reached only after a 412/409: another writer got there first. Re-read and re-plan the whole batch.
    await writes.retryAfterConflict();
  }
}
