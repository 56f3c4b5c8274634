/**
 * The one retry policy for upstream calls: exponential backoff with full jitter, `Retry-After`
 * honoured, everything inside one deadline per event.
 */

export interface BackoffOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  /** Random source in [0, 1); injectable for tests. */
  random?: () => number;
}

/** Full jitter (AWS architecture blog): a uniform delay in [0, min(max, base · 2^attempt)). */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt);
  return Math.floor((options.random ?? Math.random)() * ceiling);
}

/** `Retry-After` as seconds or an HTTP-date (RFC 9110, section 10.2.3), in milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP-date names its day and month ("Wed, 25 Nov 2026 10:00:30 GMT"); V8 would also read "-1" as a date.
  if (!/^[A-Za-z]{3}, /.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A point in time after which the event gives up. */
export class Deadline {
  readonly expiresAt: number;
  constructor(budgetMs: number, now = Date.now()) {
    this.expiresAt = now + budgetMs;
  }
  remaining(now = Date.now()): number {
    return Math.max(0, this.expiresAt - now);
  }
}
