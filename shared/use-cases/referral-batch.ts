/**
 * Group commit per referral (docs/ordering.md#batches): the events for one referral that wait behind each
 * other in this instance are applied as one batch, with one read and one write.
 *
 * - **The queue.** Each referral has a queue of waiting events. A *turn* takes the referral's
 *   {@link KeyedLock} (so a turn is still "one update per referral at a time in this instance"), takes the
 *   waiting events and applies them. The first event to arrive on an idle referral is alone in its turn
 *   and runs as before group commit; the events that arrive while a turn runs wait for the next one, which
 *   takes them all (up to {@link BATCH_CAP}) as one batch.
 * - **What is batched.** Every event but a dry run (a turn of its own). A batch is a run of consecutive events
 *   that all have `occurredAt` (an *ordered* batch) or all have none, in arrival order.
 * - **Ordered batches** (docs/ordering.md#batches) follow the ordering protocol of one event with one claim for
 *   the batch: the record is read before the referral, each event's fields are decided against the record as
 *   the events before it left it (core/plan-batch.ts `planOrderedBatch`), every applied field is claimed in one
 *   conditional write, with the time of the latest event that applied it, before the PUT, and confirmed after
 *   it against what the PUT left. A live claim of another event on one of the batch's fields is waited for; one
 *   left by an earlier delivery of an event of the batch (a redelivery) makes the turn apply its events one by
 *   one, so that each takes over its own claim.
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
import { randomUUID } from 'node:crypto';
import { anySignal } from '../core/abort.js';
import { AdapterError } from '../core/errors.js';
import {
  claimFieldsAt,
  currentKey,
  fieldsOf,
  type OrderedField,
  owns,
  rollbackClaims,
  settleBatchClaims,
  settleLapsed,
} from '../core/ordering.js';
import { type BatchPlan, batchHolds, planBatch, planOrderedBatch, writesSomething } from '../core/plan-batch.js';
import type { JsonObject } from '../core/referral.js';
import { Deadline } from '../core/retry.js';
import type { UpdateEvent, UpdateResult } from '../core/update.js';
import { asAdapterError } from '../http/response.js';
import { newStats, type UpdateStats } from '../telemetry/event-record.js';
import type { EventDeadline } from './deadline.js';
import { KeyedLock } from './keyed-lock.js';
import {
  ClaimedRecord,
  claimUntil,
  ORDERING_WRITE_ATTEMPTS,
  type OrderingStore,
  orderingBusy,
} from './ordering-record.js';
import { staleResult, supersededAnswer, type UpdateDependencies } from './update-referral.js';
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
  /** The ordering claim id the event takes when applied alone (events with an id: the same for every delivery). */
  claimId?: string | undefined;
}

/** What a batch is applied with: the Partner Center client and retry settings, and the ordering record's store. */
export interface BatchDependencies extends Pick<UpdateDependencies, 'client' | 'retry' | 'random'> {
  /** Needed for ordered batches (events with `occurredAt`); without it such events are never batched. */
  ordering?: { store: OrderingStore; marginMs: number };
}

/** Whether an event may share a write with others: any event but a dry run. */
export function isBatchable(event: UpdateEvent): boolean {
  return !event.dryRun;
}

/** Whether two events may share a batch: both with `occurredAt` (an ordered batch) or both without. */
function sameKind(a: UpdateEvent, b: UpdateEvent): boolean {
  return (a.occurredAt === undefined) === (b.occurredAt === undefined);
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
 * The events of the next turn, taken off the queue: the first one alone when it is not batchable (a dry run),
 * else the run of batchable events of its kind (with or without `occurredAt`) at the head, up to {@link BATCH_CAP}.
 * Events whose deadline has run out are left to their own abort (they remove themselves).
 */
function take(queue: Waiting[]): Waiting[] {
  const live = queue.filter((entry) => !entry.member.deadline.signal.aborted);
  queue.splice(0, queue.length, ...live);
  const first = queue[0];
  if (!first) return [];
  const head = first.member.event;
  if (!isBatchable(head)) return queue.splice(0, 1);
  let n = 1;
  const joins = (event: UpdateEvent) => isBatchable(event) && sameKind(head, event);
  while (n < queue.length && n < BATCH_CAP && joins((queue[n] as Waiting).member.event)) n++;
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
 * Applies batchable events for one referral (more than one, all of one kind) with one read and one write, and
 * answers each. A write Partner Center refuses for good (`upstream_rejected`) is retried event by event
 * (`alone`), so that one event's value never fails another, and so is an ordered batch one of whose events finds
 * its own earlier claim (a redelivery); any other failure answers every event the same error.
 */
export async function updateBatch(members: readonly BatchMember[], deps: BatchDependencies): Promise<BatchSettled[]> {
  const stats = newStats();
  const oneByOne = async () => {
    addStats(members, stats);
    const settled: BatchSettled[] = [];
    for (const member of members) settled.push(await settle(member.alone));
    return settled;
  };
  const ordered = (members[0] as BatchMember).event.occurredAt !== undefined;
  if (ordered && !deps.ordering) return oneByOne();
  let settled: BatchSettled[];
  try {
    settled = await writeBatch(members, deps, stats);
  } catch (error) {
    if (error instanceof ApplyOneByOne) return oneByOne();
    const refusal = asAdapterError(error);
    if (refusal.code === 'upstream_rejected') return oneByOne();
    settled = members.map(() => ({ error: refusal }));
  }
  addStats(members, stats);
  return settled;
}

/** An ordered batch found a claim of one of its own events (an earlier delivery's): apply them one by one. */
class ApplyOneByOne extends Error {}

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
 * under the earliest deadline of the events; for an ordered batch, the ordering record is read before the
 * referral and the batch's claim written before the PUT, as for one event (docs/ordering.md#batches). Throws
 * what ends the batch for every event.
 */
async function writeBatch(
  members: readonly BatchMember[],
  deps: BatchDependencies,
  stats: UpdateStats,
): Promise<BatchSettled[]> {
  const { client, retry } = deps;
  const leader = members[0] as BatchMember;
  const { referralId } = leader.event;
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
  const writes = writeLoop({
    referralId,
    retry,
    random: deps.random,
    stats,
    deadline,
    abortSignal,
    // One correlation id for the batch's calls: its first event's.
    correlationId: leader.correlationId,
    budgetRanOut,
  });
  const ordering = leader.event.occurredAt !== undefined ? deps.ordering : undefined;
  const claim = ordering && new BatchClaim(ordering, members, { retry, expiresAt, abortSignal });
  const { requestContext } = writes;
  /** `unlandedMayLand`: a PUT of an earlier attempt, not the one of `plan`, may still land. */
  const answers = async (
    plan: BatchPlan,
    final: JsonObject,
    eTag: string | null,
    unlandedMayLand = false,
  ): Promise<BatchSettled[]> => {
    await claim?.confirm(plan, unlandedMayLand);
    return members.map((member, i) => {
      const planned = plan.events[i];
      if (!planned) return { error: new AdapterError('internal_error', 'The batch plan left an event out.') };
      if (planned.kind === 'refused') return { error: planned.error };
      if (planned.kind === 'stale') return { ok: staleResult(member.event, planned.superseded) };
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
          ...supersededAnswer(planned.superseded),
        },
      };
    });
  };

  /** The plan of a PUT whose outcome is unknown (timeout, reset, 5xx): it may have landed. */
  let unconfirmed: BatchPlan | undefined;
  try {
    for (;;) {
      let writing: BatchPlan | undefined;
      try {
        await claim?.prepare();
        const readStartedAt = Date.now();
        const read = await client.getReferral(referralId, requestContext());
        stats.lastUpstreamStatus = 200;
        // Our earlier unconfirmed PUT did land (the referral holds what it wrote): its plan is the answer.
        if (unconfirmed && batchHolds(read.referral, unconfirmed))
          return await answers(unconfirmed, read.referral, read.eTag);
        let plan: BatchPlan;
        let putBy: number | undefined;
        if (claim) {
          const decided = await claim.decide(read.referral, readStartedAt);
          if (decided.kind === 'reread') continue;
          if (decided.kind === 'wait') {
            await writes.waitForClaim(decided.waits);
            continue;
          }
          plan = decided.plan;
          putBy = decided.putBy;
        } else
          plan = planBatch(
            referralId,
            read.referral,
            members.map((m) => m.event.intent),
          );
        if (!writesSomething(plan)) return await answers(plan, read.referral, read.eTag, unconfirmed !== undefined);
        const context = requestContext(putBy);
        writing = plan;
        const write = await client.writeReferral(
          referralId,
          { body: plan.body, operations: plan.operations },
          read.eTag,
          context,
        );
        if (writes.written(write)) return await answers(plan, write.referral ?? plan.body, write.eTag ?? null);
      } catch (error) {
        if (writing && mayHaveLanded(error)) unconfirmed = writing;
        await writes.retryAfterFailure(error);
        continue;
      }
      // Reached only after a 412/409: another writer got there first. Re-read and re-plan the whole batch.
      await writes.retryAfterConflict();
    }
  } catch (error) {
    // As for one event: the claim is given back unless a PUT of the batch may still land (then it lapses).
    if (claim && unconfirmed === undefined) await claim.rollback();
    throw error;
  }
}

type BatchDecided =
  | { kind: 'reread' }
  | { kind: 'wait'; waits: number }
  | { kind: 'go'; plan: BatchPlan; putBy?: number };

/**
 * The claims of an ordered batch on the ordering record, across the attempts of its loop: each applied field
 * claimed with the time of the latest event of the batch that applied it, under that event's claim id (the one it
 * takes when applied alone; a fresh one for the batch's events without an id), so that a redelivery of it takes the
 * claim over as its own (docs/ordering.md#batches).
 */
class BatchClaim {
  readonly #record: ClaimedRecord;
  readonly #fields: OrderedField[];
  /** Per event of the batch, the claim id its fields are claimed under. */
  readonly #ids: string[];
  /** The claim ids of the batch's events that have an event id: a claim of one of them may be a redelivery's. */
  readonly #redeliverable: Set<string>;
  #waits = 0;
  #rereads = 0;

  constructor(
    readonly deps: NonNullable<BatchDependencies['ordering']>,
    readonly members: readonly BatchMember[],
    readonly options: { retry: BatchDependencies['retry']; expiresAt: number; abortSignal: AbortSignal },
  ) {
    const { referralId } = (members[0] as BatchMember).event;
    const fresh = randomUUID();
    this.#ids = members.map((m) => m.claimId ?? fresh);
    this.#redeliverable = new Set(members.flatMap((m) => (m.claimId === undefined ? [] : [m.claimId])));
    this.#record = new ClaimedRecord(deps.store, referralId, new Set(this.#ids), undefined, options.abortSignal);
    this.#fields = [...new Set(members.flatMap((m) => fieldsOf(m.event.intent)))];
  }

  /** Reads the record, when no current copy is known, before the referral is read. */
  async prepare(): Promise<void> {
    await this.#record.read();
  }

  /** The decision for this read of the referral, and the batch's claim, written before the PUT. */
  async decide(referral: JsonObject, readStartedAt: number): Promise<BatchDecided> {
    const { referralId, owner } = this.#record;
    const known = this.#record.known;
    if (!known) return this.#reread();
    const settled = settleLapsed(known.record, referral, readStartedAt);
    for (const field of this.#fields) {
      const by = settled[field]?.pending?.by;
      if (by === undefined) continue;
      // The batch's own claim, from an earlier attempt.
      if (owns(owner, by) && this.#record.claimedHere) continue;
      // An earlier delivery of one of the batch's events left a claim (its PUT may still land): that event, applied
      // alone, takes it over as its own (a redelivery); the turn applies its events one by one.
      if (this.#redeliverable.has(by)) throw new ApplyOneByOne();
      this.#record.forget();
      return { kind: 'wait', waits: ++this.#waits };
    }
    // Planned against the record without this batch's own claims of earlier attempts (their earlier times).
    const plan = planOrderedBatch(
      referralId,
      referral,
      rollbackClaims(settled, owner),
      this.members.map(({ event }) => ({ intent: event.intent, occurredAt: event.occurredAt as string })),
    );
    const { body } = plan;
    const writes = new Map<OrderedField, string>();
    if (body) for (const field of plan.applied.keys()) writes.set(field, currentKey(field, body));
    const until = claimUntil({
      requestTimeoutMs: this.options.retry.requestTimeoutMs,
      marginMs: this.deps.marginMs,
      expiresAt: this.options.expiresAt,
    });
    const applied = new Map(
      [...plan.applied].map(([field, { at, event }]) => [field, { at, by: this.#ids[event] as string }] as const),
    );
    const next = claimFieldsAt(settled, applied, writes, { owner, until });
    if (!(await this.#record.write(known, next))) return this.#reread();
    return body ? { kind: 'go', plan, putBy: until - this.deps.marginMs } : { kind: 'go', plan };
  }

  /**
   * The write of `landed` landed (or it had nothing to write): its fields are confirmed; the fields only an earlier
   * attempt claimed get their previous time back, unless that attempt's PUT may still land (core/ordering.ts).
   */
  confirm(landed: BatchPlan, unlandedMayLand: boolean): Promise<void> {
    const { owner } = this.#record;
    return this.#record.settle(
      (record) => settleBatchClaims(record, owner, landed.applied, unlandedMayLand),
      this.options.expiresAt,
    );
  }

  /** The batch failed and none of its writes can land: its fields get their previous times back. */
  rollback(): Promise<void> {
    if (!this.#record.claimedHere) return Promise.resolve();
    const { owner } = this.#record;
    return this.#record.settle((record) => rollbackClaims(record, owner), this.options.expiresAt);
  }

  #reread(): BatchDecided {
    if (++this.#rereads > ORDERING_WRITE_ATTEMPTS) throw orderingBusy(this.#record.referralId);
    return { kind: 'reread' };
  }
}
