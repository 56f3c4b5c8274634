/**
 * Admission to Partner Center for one process (docs/behaviour.md#admission-to-partner-center): at most
 * `permits` requests in flight (the connection pool's size, so the pool never queues a request and a request's
 * timeout covers only its time on the wire), granted oldest first (by the time the caller gives, its event's
 * start; else its arrival, so FIFO), never before a shared "not before" time (a `429`'s `Retry-After`),
 * while a pace is set, no closer together than the pace allows, and never more at once than the window: a
 * slow start that ./throttle.ts widens on success and narrows on `429`
 * (docs/partner-center-api.md#throttling-and-retries).
 */
import { performance } from 'node:perf_hooks';

/** Gives the permit back; calling it again does nothing. */
export type Release = () => void;

export interface AdmissionOptions {
  /** Requests in flight at most (≥ 1). */
  permits: number;
  /** Clock (epoch ms); injectable for tests. */
  now?: () => number;
}

interface Waiter {
  /** performance.now() scale: who waits longest (or whose event started first) goes first. */
  since: number;
  grant: (release: Release) => void;
}

export class Admission {
  readonly #permits: number;
  readonly #now: () => number;
  readonly #queue: Waiter[] = [];
  #inFlight = 0;
  #notBefore = 0;
  /** Minimum time between two grants; 0: no pace. */
  #intervalMs = 0;
  #lastGrantAt = Number.NEGATIVE_INFINITY;
  /** Requests in flight at most right now (1 … permits; fractional: it grows in steps below one). */
  #window: number;
  /** The window after {@link #idleMs} with nothing in flight (the slow start again); permits: none. */
  #initialWindow: number;
  #idleMs = Number.POSITIVE_INFINITY;
  /** When the last request in flight was released. */
  #idleSince = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Number.POSITIVE_INFINITY;

  constructor(options: AdmissionOptions) {
    if (!Number.isInteger(options.permits) || options.permits < 1) throw new RangeError('permits must be ≥ 1');
    this.#permits = options.permits;
    this.#now = options.now ?? Date.now;
    this.#window = options.permits;
    this.#initialWindow = options.permits;
  }

  /** Requests admitted and not yet released. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Callers waiting for their turn. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** No request is admitted before this time (epoch ms). */
  get notBefore(): number {
    return this.#notBefore;
  }

  /** Requests in flight at most right now: the window (1 … permits; may be fractional), all permits by default. */
  get window(): number {
    return this.#window;
  }

  /** Requests in flight at most: ⌊window⌋. */
  get limit(): number {
    return Math.floor(this.#window);
  }

  /** Requests per second while a pace is set; undefined: none. */
  get pace(): number | undefined {
    return this.#intervalMs === 0 ? undefined : 1000 / this.#intervalMs;
  }

  /**
   * A permit, once every caller with an earlier `since` (ties: every earlier caller) got one, a permit is free
   * and the pause and pace allow it. `since` (performance.now() scale) defaults to now: arrival order. When
   * `abortSignal` aborts first, the caller leaves the queue (it never gets a permit) and the promise rejects
   * with the signal's reason; the others keep their order.
   */
  acquire(abortSignal?: AbortSignal, since: number = performance.now()): Promise<Release> {
    if (abortSignal?.aborted) return Promise.reject(abortSignal.reason);
    if (this.#queue.length === 0 && this.#inFlight < this.#limitNow() && this.#now() >= this.#nextGrantAt()) {
      return Promise.resolve(this.#grant());
    }
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#queue.indexOf(waiter);
        if (index >= 0) this.#queue.splice(index, 1);
        reject(abortSignal?.reason);
        this.#pump();
      };
      const waiter: Waiter = {
        since,
        grant: (release) => {
          abortSignal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      abortSignal?.addEventListener('abort', onAbort, { once: true });
      // After every waiter with the same or an earlier `since` (binary search: the queue stays sorted).
      let low = 0;
      let high = this.#queue.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if ((this.#queue[middle] as Waiter).since <= since) low = middle + 1;
        else high = middle;
      }
      this.#queue.splice(low, 0, waiter);
      this.#pump();
    });
  }

  /** No request is admitted before `epochMs` (a later time than the current one wins). */
  pauseUntil(epochMs: number): void {
    if (epochMs <= this.#notBefore) return;
    this.#notBefore = epochMs;
    this.#pump();
  }

  /** Grants at most `perSecond` requests per second (evenly spaced); undefined lifts the pace. */
  setPace(perSecond: number | undefined): void {
    this.#intervalMs = perSecond === undefined || !(perSecond > 0) ? 0 : 1000 / perSecond;
    this.#pump();
  }

  /** At most ⌊`requests`⌋ in flight (kept within 1 … permits); requests already in flight stay. */
  setWindow(requests: number): void {
    const window = requests >= 1 ? Math.min(this.#permits, requests) : 1;
    if (window === this.#window) return;
    this.#window = window;
    this.#pump();
  }

  /**
   * The slow start: the window becomes `initial` now (if smaller), and again whenever a request is admitted
   * after `idleMs` with nothing in flight (what held once says little after a quiet spell, RFC 5681 §4.1).
   */
  slowStart(initial: number, idleMs: number): void {
    this.#initialWindow = initial >= 1 ? Math.min(this.#permits, initial) : 1;
    this.#idleMs = idleMs;
    this.#idleSince = this.#now();
    this.setWindow(Math.min(this.#window, this.#initialWindow));
  }

  /** Stops the wake-up timer (the process is closing); waiters stay queued. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #nextGrantAt(): number {
    return Math.max(this.#notBefore, this.#intervalMs === 0 ? 0 : this.#lastGrantAt + this.#intervalMs);
  }

  /** ⌊window⌋, after a restart of the slow start if the instance was idle long enough. */
  #limitNow(): number {
    if (this.#inFlight === 0 && this.#now() - this.#idleSince >= this.#idleMs) {
      this.#window = Math.min(this.#window, this.#initialWindow);
    }
    return Math.floor(this.#window);
  }

  #grant(): Release {
    this.#inFlight++;
    this.#lastGrantAt = this.#now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
      if (this.#inFlight === 0) this.#idleSince = this.#now();
      this.#pump();
    };
  }

  #pump(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#limitNow()) {
      const at = this.#nextGrantAt();
      const now = this.#now();
      if (now < at) {
        this.#wakeAt(at, at - now);
        return;
      }
      const waiter = this.#queue.shift() as Waiter;
      waiter.grant(this.#grant());
    }
  }

  #wakeAt(at: number, delayMs: number): void {
    if (this.#timer && this.#timerAt <= at) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.#pump();
    }, delayMs);
  }
}
