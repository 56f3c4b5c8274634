/**
 * One deadline per event: an `AbortSignal` that starts when the event starts and is passed down, as
 * `abortSignal` (Azure SDK convention), through every call the event makes: the idempotency claim, the
 * wait for the per-referral lock, token acquisition, Partner Center requests, Key Vault and Table calls.
 * Each call keeps its own timeout as an inner bound.
 */

/** The event's deadline: aborts `budgetMs` after now, with a `TimeoutError`. */
export function eventDeadline(budgetMs: number): AbortSignal {
  return AbortSignal.timeout(budgetMs);
}

/** Time the bookkeeping after an event (recording or releasing its claim) gets past the event's deadline. */
export const RECORD_GRACE_MS = 2_000;

/**
 * A signal that aborts `graceMs` after `deadline` does: for the bookkeeping that must not be left
 * half-done when the deadline has just run out (releasing a claim so that a redelivery is not blocked).
 */
export function afterDeadline(deadline: AbortSignal, graceMs = RECORD_GRACE_MS): AbortSignal {
  const controller = new AbortController();
  const start = () => setTimeout(() => controller.abort(deadline.reason), graceMs).unref();
  if (deadline.aborted) start();
  else deadline.addEventListener('abort', start, { once: true });
  return controller.signal;
}

/** Whether `error` is `deadline` having aborted a wait (`abortable` rejects with the signal's reason). */
export function isDeadlineAbort(error: unknown, deadline: AbortSignal): boolean {
  return deadline.aborted && error === deadline.reason;
}
