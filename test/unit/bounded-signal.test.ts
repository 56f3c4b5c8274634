/**
 * `boundedSignal` (shared/core/abort.ts): the bound of every upstream exchange, Table operation and queue send.
 */
import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { boundedSignal } from '../../shared/core/abort.js';

describe('boundedSignal', () => {
  it('aborts with a TimeoutError when its time runs out, and stops listening to the outer signal', async () => {
    const outer = new AbortController();
    const bound = boundedSignal(5, outer.signal);
    expect(getEventListeners(outer.signal, 'abort')).toHaveLength(1);
    await sleep(30);
    expect(bound.signal.aborted).toBe(true);
    expect((bound.signal.reason as DOMException).name).toBe('TimeoutError');
    expect(getEventListeners(outer.signal, 'abort')).toHaveLength(0);
  });

  it("aborts with the outer signal's own reason, at once, even when already aborted", () => {
    const outer = new AbortController();
    const bound = boundedSignal(60_000, outer.signal);
    const reason = new Error('the event ran out of time');
    outer.abort(reason);
    expect(bound.signal.reason).toBe(reason);
    bound.release();
    expect(boundedSignal(60_000, outer.signal).signal.reason).toBe(reason);
  });

  it('released: never aborts, and leaves no listener on the outer signal', async () => {
    const outer = new AbortController();
    const bound = boundedSignal(5, outer.signal);
    bound.release();
    await sleep(30);
    outer.abort();
    expect(bound.signal.aborted).toBe(false);
    expect(getEventListeners(outer.signal, 'abort')).toHaveLength(0);
  });
});
