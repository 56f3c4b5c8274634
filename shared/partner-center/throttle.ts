/**
 * Throttling obeyed by the whole instance (docs/partner-center-api.md#throttling-and-retries): Microsoft's
 * guidance is to wait the `Retry-After` of a `429` and to reduce the call rate
 * (https://learn.microsoft.com/en-us/partner-center/developer/api-throttling-guidance). One `429` with
 * `Retry-After` pauses every call of this process until then ({@link Admission.pauseUntil}). When the
 * answers of the last window show a rate limit (at least {@link MIN_SAMPLE} answers, at least
 * {@link MIN_THROTTLED_SHARE} of them `429`), the calls are also paced at the rate Partner Center accepted in
 * that window less a margin ({@link PACE_MARGIN}), until {@link PACE_HOLD_MS} pass without a `429`; a `429`
 * for a request sent while paced (after the last pause) lowers the pace by that margin again. A `429` without
 * `Retry-After` (or `0`) pauses nothing: the event's own backoff handles it.
 *
 * The limit (per partner tenant, shared with every other instance and app of the tenant) is unknown until the
 * first `429`, and every request already sent by then meets it too: admitting every waiting request at once
 * costs a `429` for each one beyond the limit, and for each follow-up (the `PUT` after an accepted `GET`) sent
 * before that `429` comes back. So the instance starts slowly, with an admission window (requests in flight,
 * {@link Admission.setWindow}): {@link INITIAL_WINDOW} at first, {@link WINDOW_GROWTH} more for every answer
 * accepted while the window is full (×1.5 per round trip, up to the connection pool's size), halved by a `429`
 * (once per wave: for a request sent after the last cut), and back to the start after {@link IDLE_RESTART_MS}
 * with nothing in flight. The requests in flight never exceed {@link INITIAL_WINDOW} + {@link WINDOW_GROWTH} ×
 * the answers accepted so far, so the first wave of `429`s is at most that many: at most
 * {@link INITIAL_WINDOW} plus half the requests Partner Center accepted before its first `429` came back.
 */
import type { Admission } from './admission.js';

/** The window of answers a pace is learned from (at least; a longer `Retry-After` widens it). */
const WINDOW_MS = 1_000;
/** Longest window kept (memory bound). */
const MAX_WINDOW_MS = 60_000;
/** Answers kept at most (memory bound). */
const MAX_ANSWERS = 10_000;
/** Fewer answers than this in the window say nothing about a rate. */
export const MIN_SAMPLE = 10;
/** A smaller share of `429`s is a sporadic throttle (a pause is enough), not a rate limit. */
const MIN_THROTTLED_SHARE = 0.25;
/** The pace is this share of the rate Partner Center accepted (a pace at the limit itself would meet it again). */
export const PACE_MARGIN = 0.9;
/** A pace is lifted once this long passes without a `429`. */
export const PACE_HOLD_MS = 60_000;
/** The slowest pace (requests per second): repeated `429`s lower it by {@link PACE_MARGIN}, never below this. */
export const MIN_PACE = 1;

/** Requests in flight at first, and again after {@link IDLE_RESTART_MS} with none: the slow start. */
export const INITIAL_WINDOW = 2;
/** An answer accepted while the window is full widens it by this much (×1.5 per round trip). */
export const WINDOW_GROWTH = 0.5;
/** A `429` for a request sent after the window was last narrowed multiplies it by this (never below 1). */
export const WINDOW_CUT = 0.5;
/** With nothing in flight this long, the window starts again from {@link INITIAL_WINDOW}. */
export const IDLE_RESTART_MS = 60_000;

interface Answer {
  sentAt: number;
  throttled: boolean;
  /** Answered below 500 and not 429: what Partner Center accepted (a `503` says nothing of its rate). */
  accepted: boolean;
}

export class InstanceThrottle {
  readonly #admission: Admission;
  readonly #now: () => number;
  readonly #answers: Answer[] = [];
  #lastThrottleAt = Number.NEGATIVE_INFINITY;
  /** When the last pause began: a `429` for a request sent before then was already counted. */
  #pausedAt = Number.NEGATIVE_INFINITY;
  /** When the window was last narrowed: a `429` for a request sent before then narrows it no further. */
  #cutAt = Number.NEGATIVE_INFINITY;
  /** `429`s received since the process started (for tests and health). */
  throttles = 0;

  constructor(admission: Admission, now: () => number = Date.now) {
    this.#admission = admission;
    this.#now = now;
    admission.slowStart(INITIAL_WINDOW, IDLE_RESTART_MS);
  }

  /** An answer from Partner Center to a request sent at `sentAt` (epoch ms); `retryAfterMs` as parsed. */
  answered(sentAt: number, status: number, retryAfterMs: number | undefined): void {
    const now = this.#now();
    const throttled = status === 429;
    const taken = status < 500 && !throttled;
    this.#answers.push({ sentAt, throttled, accepted: taken });
    while (
      this.#answers.length > MAX_ANSWERS ||
      ((this.#answers[0]?.sentAt ?? now) < now - MAX_WINDOW_MS && this.#answers.length > 0)
    ) {
      this.#answers.shift();
    }
    if (!throttled) {
      // Called before this request's permit goes back: in flight counts it.
      const admission = this.#admission;
      if (taken && admission.inFlight >= admission.limit) admission.setWindow(admission.window + WINDOW_GROWTH);
      if (this.#admission.pace !== undefined && now - this.#lastThrottleAt >= PACE_HOLD_MS) {
        this.#admission.setPace(undefined);
      }
      return;
    }
    this.throttles++;
    if (sentAt > this.#cutAt) {
      this.#cutAt = now;
      this.#admission.setWindow(this.#admission.window * WINDOW_CUT);
    }
    if (retryAfterMs === undefined || retryAfterMs <= 0) return;
    this.#lastThrottleAt = now;
    const fresh = sentAt > this.#pausedAt;
    if (fresh) this.#pausedAt = now;
    this.#admission.pauseUntil(now + retryAfterMs);
    const pace = this.#admission.pace;
    if (pace !== undefined) {
      // Already paced and refused again: the pace is still above the limit.
      if (fresh) this.#admission.setPace(Math.max(MIN_PACE, pace * PACE_MARGIN));
      return;
    }
    const window = Math.min(MAX_WINDOW_MS, Math.max(WINDOW_MS, retryAfterMs));
    let total = 0;
    let refused = 0;
    let accepted = 0;
    for (const answer of this.#answers) {
      if (answer.sentAt < now - window) continue;
      total++;
      if (answer.throttled) refused++;
      if (answer.accepted) accepted++;
    }
    if (total < MIN_SAMPLE || refused < total * MIN_THROTTLED_SHARE) return;
    this.#admission.setPace(Math.max(MIN_PACE, (PACE_MARGIN * Math.max(1, accepted) * 1000) / window));
  }
}
