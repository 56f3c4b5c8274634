/**
 * One deadline per event: an `AbortSignal` that starts when the event starts and is passed down, as
 * `abortSignal` (Azure SDK convention), through every call the event makes: the idempotency claim, the
 * wait for the referral's turn (the batching step), token acquisition (a shared token request is waited for, not cancelled:
 * docs/behaviour.md), Partner Center requests and Table calls.
 * Each call keeps its own timeout as an inner bound.
 */

import { Deadline } from '../core/retry.js';

/** The event's deadline, as a signal to pass down and as a clock to decide whether a wait still fits. */
export interface EventDeadline {
  /** Aborts (with a `TimeoutError`) when the budget runs out. */
  signal: AbortSignal;
  /** The same instant, as a clock (`remaining()`, `expiresAt`). */
  clock: Deadline;
}

/** The deadline of an event arriving now: `budgetMs` from now. */
export function eventDeadline(budgetMs: number, now = Date.now()): EventDeadline {
  return { signal: AbortSignal.timeout(budgetMs), clock: new Deadline(budgetMs, now) };
}

/** Time the bookkeeping after an event (recording or releasing its claim) gets past the event's deadline. */
export const RECORD_GRACE_MS = 2_000;

/**
 * A signal that aborts `graceMs` after the event's deadline (or its expiry, epoch ms): for the bookkeeping that must not be left
 * half-done when the deadline has just run out (releasing a claim so that a redelivery is not blocked).
 * A timer of its own, not a listener on the event's signal, so nothing of a finished event is kept alive.
 */
export function afterDeadline(deadline: EventDeadline | number, graceMs = RECORD_GRACE_MS): AbortSignal {
  const expiresAt = typeof deadline === 'number' ? deadline : deadline.clock.expiresAt;
  return AbortSignal.timeout(Math.max(0, expiresAt - Date.now()) + graceMs);
}
