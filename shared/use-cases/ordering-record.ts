/**
 * An event's (or a batch's) claims on a referral's ordering record in the store: the copy in hand with its
 * version, conditional writes, and the best-effort confirm or rollback after the write (docs/ordering.md).
 * The decisions are pure (core/ordering.ts); one event's protocol is `OrderingClaim` in ./update-referral.ts,
 * a batch's is in ./referral-batch.ts.
 */
import { isDeepStrictEqual } from 'node:util';
import { AdapterError } from '../core/errors.js';
import { type ClaimOwner, holdsClaims, type OrderingRecord } from '../core/ordering.js';
import type { IdempotencyStore, VersionedOrdering } from '../idempotency/store.js';
import { afterDeadline } from './deadline.js';

/** Conditional writes that lost to another writer before giving up (each one reads again). */
export const ORDERING_WRITE_ATTEMPTS = 5;

export type OrderingStore = Pick<IdempotencyStore, 'readOrdering' | 'writeOrdering'>;

export class ClaimedRecord {
  readonly #store: OrderingStore;
  #known: VersionedOrdering | undefined;
  #claimedHere = false;

  constructor(
    store: OrderingStore,
    readonly referralId: string,
    /** Whose pending entries are this claim's: one event's claim id, or a batch's events' ids. */
    readonly owner: ClaimOwner,
    snapshot: VersionedOrdering | undefined,
    readonly abortSignal: AbortSignal | undefined,
  ) {
    this.#store = store;
    this.#known = snapshot;
  }

  /** The copy in hand, if it is current as far as this claim knows. */
  get known(): VersionedOrdering | undefined {
    return this.#known;
  }

  /** This claim wrote a pending entry of its own: only then can it have anything to roll back. */
  get claimedHere(): boolean {
    return this.#claimedHere;
  }

  /** Drops the copy in hand: the next {@link read} reads the store. */
  forget(): void {
    this.#known = undefined;
  }

  /** The copy in hand, or a fresh read of the record. */
  async read(abortSignal = this.abortSignal): Promise<VersionedOrdering> {
    this.#known ??= await this.#store.readOrdering(this.referralId, abortSignal ? { abortSignal } : {});
    return this.#known;
  }

  /** Conditional write; false (and forgets the stale copy) when another writer got there first. */
  async write(known: VersionedOrdering, next: OrderingRecord, abortSignal = this.abortSignal): Promise<boolean> {
    if (isDeepStrictEqual(next, known.record)) return true;
    const version = await this.#store.writeOrdering(
      this.referralId,
      next,
      known.version,
      abortSignal ? { abortSignal } : {},
    );
    this.#known = version === undefined ? undefined : { record: next, version };
    if (version !== undefined && holdsClaims(next, this.owner)) this.#claimedHere = true;
    return version !== undefined;
  }

  /**
   * Applies `change` to the record while it holds this claim's entries: best effort, within a grace past the
   * deadline; a claim left behind lapses and is settled by the next read of the referral.
   */
  async settle(change: (record: OrderingRecord) => OrderingRecord, expiresAt: number): Promise<void> {
    const abortSignal = afterDeadline(expiresAt);
    try {
      for (let attempt = 0; attempt < ORDERING_WRITE_ATTEMPTS; attempt++) {
        const known = await this.read(abortSignal);
        if (!holdsClaims(known.record, this.owner)) return;
        if (await this.write(known, change(known.record), abortSignal)) return;
      }
    } catch {
      // Left to lapse: the next event that reads the referral after `until` settles it.
    }
  }
}

/**
 * When a claim written now lapses: the PUT that follows may take its request timeout (or what is left of the
 * budget), plus the margin (docs/ordering.md). The PUT itself must be over by `until - marginMs`.
 */
export function claimUntil(options: { requestTimeoutMs: number; marginMs: number; expiresAt: number }): number {
  const now = Date.now();
  return now + Math.min(options.requestTimeoutMs, Math.max(0, options.expiresAt - now)) + options.marginMs;
}

/** Every conditional write of the record lost to another writer: the event (or batch) gives up, retryably. */
export function orderingBusy(referralId: string): AdapterError {
  return new AdapterError(
    'conflict',
    `The ordering record of referral ${referralId} changed under each attempt to claim it; retry the event.`,
    { retryAfterSeconds: 1, extensions: { referralId } },
  );
}

/** A field is still under another event's claim when the budget leaves no time to wait for it. */
export function claimedElsewhere(referralId: string): AdapterError {
  return new AdapterError(
    'conflict',
    `Another event's write to the same fields of referral ${referralId} is still in flight; retry the event.`,
    { retryAfterSeconds: 1, extensions: { referralId } },
  );
}
