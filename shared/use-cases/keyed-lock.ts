/**
 * Serializes work per key within this instance: updates to the same referral run one after another, so
 * parallel events do not fight each other with 412s. Other keys run concurrently.
 */
import { type AbortOptions, abortable } from '../core/abort.js';

export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  /**
   * Runs `work` once every earlier holder of `key` is done. When `abortSignal` aborts first, stops
   * waiting and rejects with its reason; the queue behind keeps its order.
   */
  async run<T>(key: string, work: () => Promise<T>, options: AbortOptions = {}): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.#tails.set(key, tail);
    try {
      await abortable(previous, options.abortSignal);
      return await work();
    } finally {
      release();
      // Forgotten once everything queued before it is done too (an aborted waiter leaves before then).
      void tail.then(() => {
        if (this.#tails.get(key) === tail) this.#tails.delete(key);
      });
    }
  }

  /** Keys with work queued or running (for tests and health). */
  get size(): number {
    return this.#tails.size;
  }
}
