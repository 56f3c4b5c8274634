/**
 * Cancellation the Azure SDK way: operations take an options bag ending in `abortSignal?: AbortSignal`
 * (https://azure.github.io/azure-sdk/typescript_design.html#ts-options-abortSignal). An event's deadline is
 * one such signal, passed down through every call the event makes; a call's own timeout is an inner
 * bound combined with it.
 */

/** The options bag an abortable operation takes. */
export interface AbortOptions {
  abortSignal?: AbortSignal;
}

/** A signal that aborts as soon as any of `signals` does (absent ones are skipped). */
export function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal {
  const present = signals.filter((signal): signal is AbortSignal => signal !== undefined);
  return present.length === 1 ? (present[0] as AbortSignal) : AbortSignal.any(present);
}

/** A signal bounded by a timeout and an outer signal, and its release once the operation is over. */
export interface BoundedSignal {
  signal: AbortSignal;
  /** The operation is over: the timer is cleared and the outer signal no longer listened to. */
  release(): void;
}

/**
 * A signal that aborts `timeoutMs` from now (a `TimeoutError`, as `AbortSignal.timeout` gives) or when `outer`
 * aborts (with its reason), until `release()`: one controller, one timer and one listener, cheaper per call than
 * `AbortSignal.any([AbortSignal.timeout(…), outer])` and its weak references (docs/performance-analysis.md).
 */
export function boundedSignal(timeoutMs: number, outer?: AbortSignal): BoundedSignal {
  const controller = new AbortController();
  if (outer?.aborted) {
    controller.abort(outer.reason);
    return { signal: controller.signal, release: () => {} };
  }
  const onOuterAbort = () => abort(outer?.reason);
  const timer = setTimeout(
    () => abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    timeoutMs,
  );
  const release = () => {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  };
  const abort = (reason: unknown) => {
    release();
    controller.abort(reason);
  };
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  return { signal: controller.signal, release };
}

/**
 * `work`, or a rejection with the signal's reason as soon as `signal` aborts: the caller stops waiting,
 * the work itself goes on (for work shared with other waiters, such as a single-flight token request).
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {}); // settled by its other waiters; nobody here awaits it
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** True for what an aborted signal or an expired timeout makes an operation throw. */
export function isAbortError(error: unknown): boolean {
  const name = error instanceof Error || error instanceof DOMException ? error.name : '';
  return name === 'AbortError' || name === 'TimeoutError';
}

/** Whether `error` is `signal` having aborted a wait (`abortable` rejects with the signal's reason). */
export function isAbortOf(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && error === signal.reason;
}
