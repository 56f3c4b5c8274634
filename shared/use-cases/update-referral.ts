/**
 * Use case: apply one update event to one referral.
 *
 * read (GET + eTag) → plan (rules + merge, pure) → write (PUT or PATCH + If-Match), in one loop that owns every
 * retry and the time budget:
 * - 412/409 on the PUT: another writer got there first. Re-read, re-check the rules against the new
 *   state, re-apply the *intent* (never the stale snapshot), write again; bounded, with jitter.
 * - A retryable failure (429, 5xx, network, timeout) on the GET: back off (honouring `Retry-After`) and
 *   read again. On the PUT the outcome is unknown (the write may have landed): never resend blindly,
 *   go back to the read. If the fresh referral already holds every requested value, the event succeeded.
 *
 * - Ordering (events with `occurredAt`, when `deps.ordering` is given): after every read, the per-field
 *   decision is made again against the ordering record (core/ordering.ts): superseded fields are left
 *   out, fields under another event's live claim are waited for, and the fields to write are claimed
 *   (a conditional write of the record) before the PUT; the claim is confirmed after it, or rolled back
 *   when the event fails and none of its writes can land (docs/ordering.md).
 *
 * `abortSignal` is the event's deadline (started by the caller when the event started): it bounds every
 * request, token acquisition and backoff wait of the loop. The loop's own budget (`retry.budgetMs` from
 * its start) stays as the inner bound that decides whether a wait still fits.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { AdapterError } from '../core/errors.js';
import { type Change, desiredValues } from '../core/merge.js';
import {
  claimFields,
  confirmClaims,
  decideOrder,
  desiredKey,
  fieldsOf,
  holdsClaims,
  latestOf,
  type OrderedField,
  pointersOf,
  rollbackClaims,
  type Superseded,
  settleLapsed,
  withoutFields,
} from '../core/ordering.js';
import { planUpdate, type UpdatePlan } from '../core/plan-update.js';
import type { JsonObject } from '../core/referral.js';
import { Deadline } from '../core/retry.js';
import { requestedState } from '../core/transitions.js';
import type { Outcome, UpdateEvent, UpdateIntent, UpdateResult } from '../core/update.js';
import type { IdempotencyStore, VersionedOrdering } from '../idempotency/store.js';
import type { PartnerCenterClient } from '../partner-center/client.js';
import { newStats, type UpdateStats } from '../telemetry/event-record.js';
import { ClaimedRecord, claimUntil, ORDERING_WRITE_ATTEMPTS, orderingBusy } from './ordering-record.js';
import { mayHaveLanded, writeLoop } from './write-loop.js';

export interface UpdateDependencies {
  client: PartnerCenterClient;
  retry: Config['retry'];
  random?: () => number;
  /** Ordering by `occurredAt` per field; without it (or without `occurredAt`) the event is applied as it arrives. */
  ordering?: OrderingDependencies;
}

export interface OrderingDependencies {
  store: Pick<IdempotencyStore, 'readOrdering' | 'writeOrdering'>;
  /** The record as read before the update (process-event's `inOrder`), reused for the first decision. */
  snapshot?: VersionedOrdering;
  /**
   * How long past the time a PUT may take (its request timeout) its claim lasts: a PUT does not land later
   * than that after the adapter stopped waiting for it (docs/ordering.md).
   */
  marginMs: number;
  /** The claim id; a fresh one unless given (tests). */
  claimId?: string;
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
  const expiresAt = options.expiresAt ?? now + retry.budgetMs;
  const deadline = new Deadline(expiresAt - now, now);
  const budgetRanOut = () =>
    new AdapterError('upstream_timeout', `The time budget of ${retry.budgetMs} ms for this event ran out.`, {
      extensions: { referralId },
    });
  const writes = writeLoop({
    referralId,
    retry,
    random: deps.random,
    stats,
    deadline,
    abortSignal,
    correlationId,
    budgetRanOut,
  });
  /** Changes of a PUT whose outcome is unknown (timeout, reset, 5xx): it may have landed. */
  let unconfirmedWrite: Change[] | undefined;
  const ordering =
    deps.ordering && event.occurredAt !== undefined
      ? new OrderingClaim(deps.ordering, referralId, event.occurredAt, intent, {
          requestTimeoutMs: retry.requestTimeoutMs,
          marginMs: deps.ordering.marginMs,
          expiresAt,
          abortSignal,
          dryRun: event.dryRun,
        })
      : undefined;
  /** Decisions that found a field under another event's claim. */
  let orderingWaits = 0;
  /** Decisions whose record write lost to another writer (each one reads again). */
  let orderingRereads = 0;

  const { requestContext } = writes;
  const answer = (outcome: Outcome, referral: JsonObject, eTag: string | null, changes: Change[]): UpdateResult => ({
    referralId,
    ...(event.eventId === undefined ? {} : { eventId: event.eventId }),
    outcome,
    status: referral.status ?? null,
    substatus: referral.substatus ?? null,
    eTag,
    changes,
    ...supersededAnswer(ordering?.superseded ?? []),
  });
  const settle = (result: UpdateResult) => (ordering ? ordering.confirm(expiresAt).then(() => result) : result);

  const loop = async (): Promise<UpdateResult> => {
    for (;;) {
      /** Set while our PUT is in flight: a failure then leaves the outcome unknown. */
      let writing: Change[] | undefined;
      try {
        if (ordering) await ordering.prepare();
        const readStartedAt = Date.now();
        const read = await client.getReferral(referralId, requestContext());
        stats.lastUpstreamStatus = 200;
        let plan: UpdatePlan;
        let putBy: number | undefined;
        if (ordering) {
          const decided = await ordering.decide(read.referral, readStartedAt);
          if (decided.kind === 'stale') return staleResult(event, ordering.superseded);
          if (decided.kind === 'reread') {
            if (++orderingRereads > ORDERING_WRITE_ATTEMPTS) throw orderingBusy(referralId);
            continue;
          }
          if (decided.kind === 'wait') {
            await writes.waitForClaim(++orderingWaits);
            continue;
          }
          plan = decided.plan;
          putBy = decided.putBy;
        } else plan = planUpdate(referralId, read.referral, intent);
        if (event.dryRun) {
          const changes = plan.kind === 'write' ? plan.changes : [];
          const dryRun = answer('dry-run', read.referral, read.eTag, changes);
          if (client.writeMethod === 'patch') {
            const operations = plan.kind === 'write' ? plan.operations : null;
            return { ...dryRun, wouldPatch: operations && { ifMatch: read.eTag, operations } };
          }
          const wouldPut = plan.kind === 'write' ? { ifMatch: read.eTag, body: plan.body } : null;
          return { ...dryRun, wouldPut };
        }
        if (plan.kind === 'unchanged') {
          // Either nothing to do, or our earlier unconfirmed PUT did land (the lost-response case).
          return settle(
            unconfirmedWrite
              ? answer('updated', read.referral, read.eTag, unconfirmedWrite)
              : answer('unchanged', read.referral, read.eTag, []),
          );
        }
        const context = requestContext(putBy);
        writing = plan.changes;
        const write = await client.writeReferral(referralId, plan, read.eTag, context);
        if (writes.written(write)) {
          return settle(answer('updated', write.referral ?? plan.body, write.eTag ?? null, plan.changes));
        }
        // A 412 proves our PUT was not applied; any earlier unconfirmed one is settled by the next read.
      } catch (error) {
        if (writing && mayHaveLanded(error)) unconfirmedWrite = writing;
        await writes.retryAfterFailure(error);
        continue;
      }
      // Reached only after a 412/409: another writer got there first.
      await writes.retryAfterConflict();
    }
  };

  try {
    return await loop();
  } catch (error) {
    // A failed event gives its claims back, unless a PUT of it may still land: that claim lapses and
    // the next read settles it against what Partner Center holds.
    if (ordering && unconfirmedWrite === undefined) await ordering.rollback(expiresAt);
    throw error;
  }
}

/** The `superseded` answer field, present only when non-empty. */
export function supersededAnswer(superseded: readonly Superseded[]): Pick<UpdateResult, 'superseded'> {
  if (superseded.length === 0) return {};
  return {
    superseded: superseded.flatMap(({ field, occurredAt }) => pointersOf(field).map((path) => ({ path, occurredAt }))),
  };
}

/** Every field of the event was set by a later event: nothing was written (also before any read: process-event). */
export function staleResult(event: UpdateEvent, superseded: readonly Superseded[]): UpdateResult {
  const lastAppliedOccurredAt = latestOf(superseded);
  return {
    referralId: event.referralId,
    ...(event.eventId === undefined ? {} : { eventId: event.eventId }),
    outcome: 'stale',
    status: null,
    substatus: null,
    eTag: null,
    changes: [],
    ...(lastAppliedOccurredAt === undefined ? {} : { lastAppliedOccurredAt }),
    ...supersededAnswer(superseded),
  };
}

/**
 * `putBy`: the PUT that follows a claim must be over by then (the claim's `until` less the margin).
 * `reread`: another writer changed the record since it was read: read the record, then the referral, again.
 */
type Decided =
  | { kind: 'stale' }
  | { kind: 'wait' }
  | { kind: 'reread' }
  | { kind: 'go'; plan: UpdatePlan; putBy?: number };

/** One event's claims on the ordering record (core/ordering.ts), across the attempts of the loop. */
class OrderingClaim {
  readonly #record: ClaimedRecord;
  /**
   * The first record this delivery read already held a pending claim of this id: an earlier delivery of
   * the same event, whose PUT may have landed or may still land. Such a claim is never rolled back by this
   * delivery (it cannot know that PUT's outcome); it lapses and a read settles it (docs/ordering.md).
   */
  #inherited: boolean | undefined;
  readonly #claimId: string;
  superseded: Superseded[] = [];

  constructor(
    deps: OrderingDependencies,
    readonly referralId: string,
    readonly occurredAt: string,
    readonly intent: UpdateIntent,
    readonly options: {
      requestTimeoutMs: number;
      marginMs: number;
      expiresAt: number;
      abortSignal: AbortSignal | undefined;
      dryRun: boolean;
    },
  ) {
    this.#claimId = deps.claimId ?? randomUUID();
    this.#record = new ClaimedRecord(deps.store, referralId, this.#claimId, deps.snapshot, options.abortSignal);
    this.fields = fieldsOf(intent);
  }

  readonly fields: OrderedField[];

  /**
   * The decision for this read of the referral, and the claim of the fields it writes, written before
   * the PUT. Throws the rules' errors (planUpdate) like the unordered path.
   */
  async decide(referral: JsonObject, readStartedAt: number): Promise<Decided> {
    const { referralId, occurredAt, fields, options } = this;
    const claimId = this.#claimId;
    // The record version this decision writes against was read before the referral (prepare): any claim or
    // confirmation by another event after that read changes the version, so the conditional write below
    // fails and the referral is read again. A record read after the referral could hide a write that
    // landed between the two reads (and an "unchanged" plan has no If-Match to catch it).
    const known = this.#record.known;
    if (!known) return { kind: 'reread' };
    const settled = settleLapsed(known.record, referral, readStartedAt);
    this.#inherited ??= holdsClaims(settled, claimId);
    const decision = decideOrder(settled, occurredAt, fields, claimId);
    this.superseded = decision.superseded;
    if (decision.waitFor.length > 0 && !options.dryRun) {
      this.#record.forget();
      return { kind: 'wait' };
    }
    if (decision.apply.length + decision.waitFor.length === 0) return { kind: 'stale' };
    const skipped = decision.superseded.map((s) => s.field);
    const intent = withoutFields(this.intent, skipped);
    const plan = planUpdate(referralId, referral, intent);
    if (options.dryRun) return { kind: 'go', plan };
    const writes = writtenKeys(decision.apply, referral, intent, plan);
    // The claim lasts as long as the PUT that follows may take, plus the margin: that PUT is the only
    // write of it that can land while the claim is held (a later attempt claims again).
    const until = claimUntil(options);
    const next = claimFields(settled, occurredAt, decision.apply, writes, { by: claimId, until });
    if (await this.#record.write(known, next)) return { kind: 'go', plan, putBy: until - options.marginMs };
    return { kind: 'reread' };
  }

  /** Reads the record, when no current copy is known, before the referral is read (see decide). */
  async prepare(): Promise<void> {
    await this.#record.read();
  }

  /** The write landed (or the referral already held the values): the claim becomes the field's time. */
  confirm(expiresAt: number): Promise<void> {
    if (this.options.dryRun) return Promise.resolve();
    const claimId = this.#claimId;
    return this.#record.settle((record) => confirmClaims(record, claimId), expiresAt);
  }

  /** The event failed and none of its writes can land: the fields get their previous times back. */
  rollback(expiresAt: number): Promise<void> {
    if (!this.#record.claimedHere || this.#inherited) return Promise.resolve();
    const claimId = this.#claimId;
    return this.#record.settle((record) => rollbackClaims(record, claimId), expiresAt);
  }
}

/**
 * Field → digest of the value the event's PUT leaves in it, for every applied field when there is a PUT
 * (those it already holds too: if the PUT fails for good, the event leaves no trace in the record); none
 * when there is nothing to write (the event is done: its fields are confirmed at once).
 */
function writtenKeys(
  apply: readonly OrderedField[],
  referral: JsonObject,
  intent: UpdateIntent,
  plan: UpdatePlan,
): Map<OrderedField, string> {
  const writes = new Map<OrderedField, string>();
  if (plan.kind !== 'write') return writes;
  const desired = desiredValues(intent, requestedState(referral, intent));
  for (const field of apply) writes.set(field, desiredKey(field, desired));
  return writes;
}
