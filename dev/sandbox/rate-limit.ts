/**
 * The sandbox's rate-limit mode: a token bucket per sandbox (all callers share it), refilled at `perSecond`,
 * holding at most `burst` requests. A request that finds it empty is answered `429` with `Retry-After` (whole
 * seconds until the bucket holds a request again) in Partner Center's throttling shape, as the API throttling
 * guidance describes (https://learn.microsoft.com/en-us/partner-center/developer/api-throttling-guidance).
 * Throttled requests take nothing from the bucket.
 */

export interface RateLimit {
  /** Requests accepted per second, sustained (> 0). */
  perSecond: number;
  /** Requests accepted at once after a quiet period; default `perSecond` (at least 1). */
  burst?: number;
}

export class TokenBucket {
  readonly perSecond: number;
  readonly burst: number;
  #tokens: number;
  #at: number;

  constructor(
    limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {
    if (!(limit.perSecond > 0) || !Number.isFinite(limit.perSecond)) {
      throw new RangeError('rateLimit.perSecond must be a positive number');
    }
    const burst = limit.burst ?? Math.max(1, limit.perSecond);
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError('rateLimit.burst must be at least 1');
    this.perSecond = limit.perSecond;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = now();
  }

  /** Takes one request from the bucket: undefined when accepted, else the `Retry-After` in whole seconds. */
  take(): number | undefined {
    const now = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.perSecond) / 1000);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.perSecond));
  }
}
