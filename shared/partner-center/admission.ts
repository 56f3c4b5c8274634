/**
 * Admission to Partner Center for one process (docs/behaviour.md#admission-to-partner-center): at most
 * `permits` requests in flight (the connection pool's size, so the pool never queues a request and a request's
 * timeout covers only its time on the wire), granted oldest first (by the time the caller gives, its event's
 * start; else its arrival, so FIFO), never before a shared "not before" time (a `429`'s `Retry-After`) and,
 * while a pace is set, no closer together than the pace allows (docs/partner-center-api.md#throttling-and-retries).
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
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Number.POSITIVE_INFINITY;

  constructor(options: AdmissionOptions) {
    if (!Number.isInteger(options.permits) || options.permits < 1) throw new RangeError('permits must be ≥ 1');
    this.#permits = options.permits;
    this.#now = options.now ?? Date.now;
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
    if (this.#queue.length === 0 && this.#inFlight < this.#permits && this.#now() >= this.#nextGrantAt()) {
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

  /** Stops the wake-up timer (the process is closing); waiters stay queued. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #nextGrantAt(): number {
    return Math.max(this.#notBefore, this.#intervalMs === 0 ? 0 : this.#lastGrantAt + this.#intervalMs);
  }

  #grant(): Release {
    this.#inFlight++;
    this.#lastGrantAt = this.#now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
      this.#pump();
    };
  }

  #pump(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#permits) {
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
