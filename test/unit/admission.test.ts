/**
 * Admission to Partner Center (shared/partner-center/admission.ts): a FIFO semaphore with an abortable
 * acquire, a shared "not before" time and a pace. Properties over random schedules of arrivals, aborts and
 * releases: never more than N in flight, permits granted in arrival order, an aborted waiter never gets a
 * permit and never holds one back.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { Admission, type Release } from '../../shared/partner-center/admission.js';
import {
  InstanceThrottle,
  MIN_PACE,
  MIN_SAMPLE,
  PACE_HOLD_MS,
  PACE_MARGIN,
} from '../../shared/partner-center/throttle.js';

type Step = { kind: 'arrive' } | { kind: 'abort'; pick: number } | { kind: 'release'; pick: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.constant<Step>({ kind: 'arrive' }),
  fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
);

interface Caller {
  id: number;
  controller: AbortController;
  state: 'waiting' | 'granted' | 'aborted' | 'released';
  release?: Release;
}

/** Lets every settled acquire run its continuation. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Admission', () => {
  it('never more than N in flight, FIFO grants, aborted waiters never get or leak a permit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 60 }), async (permits, steps) => {
        const admission = new Admission({ permits });
        const callers: Caller[] = [];
        const granted: number[] = [];
        for (const next of steps) {
          if (next.kind === 'arrive') {
            const caller: Caller = { id: callers.length, controller: new AbortController(), state: 'waiting' };
            callers.push(caller);
            admission.acquire(caller.controller.signal).then(
              (release) => {
                expect(caller.state).toBe('waiting');
                caller.state = 'granted';
                caller.release = release;
                granted.push(caller.id);
              },
              () => {
                expect(caller.state).toBe('aborted');
              },
            );
          } else {
            const pool = callers.filter((c) => c.state === (next.kind === 'abort' ? 'waiting' : 'granted'));
            const chosen = pool[next.pick % Math.max(1, pool.length)];
            if (chosen && next.kind === 'abort') {
              chosen.state = 'aborted';
              chosen.controller.abort();
            } else if (chosen) {
              chosen.state = 'released';
              chosen.release?.();
              chosen.release?.(); // a second call gives nothing back twice
            }
          }
          await settle();
          const holding = callers.filter((c) => c.state === 'granted').length;
          expect(holding).toBeLessThanOrEqual(permits);
          expect(admission.inFlight).toBe(holding);
          // Work conserving: a free permit is never left unused while someone waits.
          const waiting = callers.filter((c) => c.state === 'waiting').length;
          expect(admission.waiting).toBe(waiting);
          if (waiting > 0) expect(holding).toBe(permits);
        }
        // FIFO: permits went out in arrival order, skipping only the callers that left.
        expect(granted).toEqual([...granted].sort((a, b) => a - b));
        const everGranted = new Set(granted);
        for (const caller of callers) {
          if (caller.state === 'aborted') expect(everGranted.has(caller.id)).toBe(false);
        }
        // Everything given back: the admission is whole again.
        while (callers.some((c) => c.state === 'granted')) {
          for (const caller of callers.filter((c) => c.state === 'granted')) {
            caller.state = 'released';
            caller.release?.();
          }
          await settle();
        }
        expect(admission.inFlight).toBe(0);
        expect(admission.waiting).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('a caller whose event started earlier goes first (same start: arrival order)', async () => {
    const admission = new Admission({ permits: 1 });
    const held = await admission.acquire();
    const order: string[] = [];
    const waits = (
      [
        ['c', 30],
        ['a', 10],
        ['b1', 20],
        ['b2', 20],
      ] as const
    ).map(([name, since]) =>
      admission.acquire(undefined, since).then((release) => {
        order.push(name);
        release();
      }),
    );
    held();
    await Promise.all(waits);
    expect(order).toEqual(['a', 'b1', 'b2', 'c']);
  });

  it('an already aborted signal is refused at once', async () => {
    const admission = new Admission({ permits: 1 });
    const controller = new AbortController();
    controller.abort(new Error('late'));
    await expect(admission.acquire(controller.signal)).rejects.toThrow('late');
    expect(admission.inFlight).toBe(0);
  });

  it('grants nothing before the pause ends, then in order', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      const admission = new Admission({ permits: 4 });
      admission.pauseUntil(Date.now() + 2_000);
      const order: number[] = [];
      const waits = [0, 1, 2].map((i) =>
        admission.acquire().then((release) => {
          order.push(i);
          return release;
        }),
      );
      await vi.advanceTimersByTimeAsync(1_999);
      expect(order).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(order).toEqual([0, 1, 2]);
      for (const release of await Promise.all(waits)) release();
    } finally {
      vi.useRealTimers();
    }
  });

  it('a pace spaces the grants', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      const admission = new Admission({ permits: 8 });
      admission.setPace(10);
      const order: number[] = [];
      for (const i of [0, 1, 2]) {
        void admission.acquire().then((release) => {
          order.push(i);
          release();
        });
      }
      await vi.advanceTimersByTimeAsync(0);
      expect(order).toEqual([0]);
      await vi.advanceTimersByTimeAsync(100);
      expect(order).toEqual([0, 1]);
      await vi.advanceTimersByTimeAsync(100);
      expect(order).toEqual([0, 1, 2]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('InstanceThrottle', () => {
  it('a 429 with Retry-After pauses the instance; without one (or 0) it pauses nothing', () => {
    let now = 1_000_000;
    const admission = new Admission({ permits: 4, now: () => now });
    const throttle = new InstanceThrottle(admission, () => now);
    throttle.answered(now, 429, undefined);
    throttle.answered(now, 429, 0);
    expect(admission.notBefore).toBe(0);
    throttle.answered(now, 429, 3_000);
    expect(admission.notBefore).toBe(now + 3_000);
    now += 1_000;
    throttle.answered(now, 429, 1_000); // an earlier end never shortens the pause
    expect(admission.notBefore).toBe(now + 2_000);
    expect(throttle.throttles).toBe(4);
  });

  it('a rate limit (many 429s among the answers of the window) sets a pace at the accepted rate, lifted after a quiet hold', () => {
    let now = 1_000_000;
    const admission = new Admission({ permits: 32, now: () => now });
    const throttle = new InstanceThrottle(admission, () => now);
    for (let i = 0; i < MIN_SAMPLE; i++) throttle.answered(now, 200, undefined);
    throttle.answered(now, 429, 1_000); // 1 in 11: a sporadic throttle
    expect(admission.pace).toBeUndefined();
    for (let i = 0; i < 4; i++) throttle.answered(now, 429, 1_000);
    const pace = MIN_SAMPLE * PACE_MARGIN;
    expect(admission.pace).toBeCloseTo(pace);
    // More 429s for requests that were in flight when the pause began change nothing.
    now += 10;
    throttle.answered(now - 20, 429, 1_000);
    expect(admission.pace).toBeCloseTo(pace);
    // A 429 for a request sent while paced: the pace is still too high.
    now += 2_000;
    throttle.answered(now - 5, 429, 1_000);
    expect(admission.pace).toBeCloseTo(pace * PACE_MARGIN);
    now += PACE_HOLD_MS - 1;
    throttle.answered(now, 200, undefined);
    expect(admission.pace).toBeCloseTo(pace * PACE_MARGIN);
    now += 1;
    throttle.answered(now, 200, undefined);
    expect(admission.pace).toBeUndefined();
  });

  it('a 503 is not a rate Partner Center accepted, and repeated 429s never pace below MIN_PACE', () => {
    let now = 1_000_000;
    const admission = new Admission({ permits: 32, now: () => now });
    const throttle = new InstanceThrottle(admission, () => now);
    for (let i = 0; i < MIN_SAMPLE; i++) throttle.answered(now, 503, undefined);
    for (let i = 0; i < 4; i++) throttle.answered(now, 429, 1_000);
    // Nothing was accepted in the window: the floor, not ten 503s' worth of requests per second.
    expect(admission.pace).toBe(MIN_PACE);
    for (let i = 0; i < 50; i++) {
      now += 2_000;
      throttle.answered(now - 5, 429, 1_000);
    }
    expect(admission.pace).toBe(MIN_PACE);
  });
});
