/**
 * Admission to Partner Center (shared/partner-center/admission.ts): a FIFO semaphore with an abortable
 * acquire, a shared "not before" time, a pace and a window. Properties over random schedules of arrivals,
 * aborts, releases and window changes: never more than N (nor the window) in flight, permits granted in arrival
 * order, an aborted waiter never gets a permit and never holds one back. The slow start of the instance
 * throttle (shared/partner-center/throttle.ts), counted on a simulated rate limit: how many `429`s the first
 * wave costs.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../../dev/sandbox/rate-limit.js';
import { Admission, type Release } from '../../shared/partner-center/admission.js';
import {
  IDLE_RESTART_MS,
  INITIAL_WINDOW,
  InstanceThrottle,
  MIN_PACE,
  MIN_SAMPLE,
  PACE_HOLD_MS,
  PACE_MARGIN,
  WINDOW_CUT,
  WINDOW_GROWTH,
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

  it('a window: never more than ⌊window⌋ in flight when a permit is granted, none left unused under it while someone waits', async () => {
    type WindowStep = { kind: 'arrive' } | { kind: 'release'; pick: number } | { kind: 'window'; requests: number };
    const windowStep: fc.Arbitrary<WindowStep> = fc.oneof(
      fc.constant<WindowStep>({ kind: 'arrive' }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('window' as const), requests: fc.double({ min: 0, max: 8, noNaN: true }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(windowStep, { maxLength: 60 }),
        async (permits, steps) => {
          const admission = new Admission({ permits });
          const held: Release[] = [];
          let waiting = 0;
          for (const next of steps) {
            const before = held.length;
            if (next.kind === 'arrive') {
              waiting++;
              void admission.acquire().then((release) => {
                waiting--;
                held.push(release);
              });
            } else if (next.kind === 'release') {
              held.splice(next.pick % Math.max(1, held.length), 1)[0]?.();
            } else {
              admission.setWindow(next.requests);
            }
            await settle();
            const limit = Math.min(permits, Math.max(1, Math.floor(admission.window)));
            expect(admission.limit).toBe(limit);
            // A smaller window keeps the requests already in flight; it only holds back new ones.
            if (held.length > before) expect(held.length).toBeLessThanOrEqual(limit);
            expect(admission.inFlight).toBe(held.length);
            if (waiting > 0) expect(held.length).toBeGreaterThanOrEqual(limit);
          }
          for (const release of held.splice(0)) release();
          await settle();
          if (waiting > 0) expect(admission.inFlight).toBeGreaterThan(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('the slow start begins again after the idle time with nothing in flight, not before', async () => {
    let now = 1_000_000;
    const admission = new Admission({ permits: 8, now: () => now });
    admission.slowStart(2, 1_000);
    expect(admission.limit).toBe(2);
    admission.setWindow(6);
    const burst = async () => {
      const releases = [0, 1, 2, 3, 4, 5].map(() => admission.acquire());
      await settle();
      const granted = admission.inFlight;
      admission.setWindow(8);
      for (const release of await Promise.all(releases)) release();
      admission.setWindow(6);
      return granted;
    };
    expect(await burst()).toBe(6);
    now += 999;
    expect(await burst()).toBe(6);
    now += 1_000;
    // Idle for the whole idle time: the window is back to 2.
    expect(await burst()).toBe(2);
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

describe('InstanceThrottle slow start', () => {
  it('starts at INITIAL_WINDOW, widens by WINDOW_GROWTH per answer accepted while the window is full, halves once per wave of 429s', async () => {
    let now = 1_000_000;
    const admission = new Admission({ permits: 32, now: () => now });
    const throttle = new InstanceThrottle(admission, () => now);
    expect(admission.window).toBe(INITIAL_WINDOW);
    const held = await Promise.all(Array.from({ length: INITIAL_WINDOW }, () => admission.acquire()));
    // Full: each accepted answer (a 404 or 412 is an answer Partner Center accepted too) widens it.
    throttle.answered(now, 200, undefined);
    throttle.answered(now, 412, undefined);
    expect(admission.window).toBe(INITIAL_WINDOW + 2 * WINDOW_GROWTH);
    // A 503 says nothing of the rate: no change.
    throttle.answered(now, 503, undefined);
    expect(admission.window).toBe(INITIAL_WINDOW + 2 * WINDOW_GROWTH);
    // Not full (one of the requests gone back): the window was not what held the requests back.
    held.pop()?.();
    throttle.answered(now, 200, undefined);
    expect(admission.window).toBe(INITIAL_WINDOW + 2 * WINDOW_GROWTH);
    // The 429s of one wave (sent before the first of them came back) halve it once; a later one again.
    now += 10;
    throttle.answered(now - 5, 429, undefined);
    throttle.answered(now - 5, 429, 1_000);
    throttle.answered(now - 8, 429, 1_000);
    expect(admission.window).toBe((INITIAL_WINDOW + 2 * WINDOW_GROWTH) * WINDOW_CUT);
    now += 1_000;
    throttle.answered(now - 1, 429, undefined);
    expect(admission.window).toBe(Math.max(1, (INITIAL_WINDOW + 2 * WINDOW_GROWTH) * WINDOW_CUT * WINDOW_CUT));
    for (let i = 0; i < 10; i++) {
      now += 1_000;
      throttle.answered(now - 1, 429, undefined);
    }
    expect(admission.window).toBe(1);
    for (const release of held) release();
  });

  it('back to INITIAL_WINDOW once nothing was in flight for IDLE_RESTART_MS', async () => {
    let now = 1_000_000;
    const admission = new Admission({ permits: 32, now: () => now });
    const throttle = new InstanceThrottle(admission, () => now);
    const burst = async () => {
      const releases = Array.from({ length: 8 }, () => admission.acquire());
      await settle();
      const granted = admission.inFlight;
      for (let i = 0; i < granted; i++) throttle.answered(now, 200, undefined);
      admission.setWindow(32);
      for (const release of await Promise.all(releases)) release();
      return granted;
    };
    expect(await burst()).toBe(INITIAL_WINDOW);
    admission.setWindow(6);
    now += IDLE_RESTART_MS - 1;
    expect(await burst()).toBe(6);
    now += IDLE_RESTART_MS;
    expect(await burst()).toBe(INITIAL_WINDOW);
  });

  it('the window never grows past the permits', async () => {
    const admission = new Admission({ permits: 3 });
    const throttle = new InstanceThrottle(admission);
    const held = [await admission.acquire(), await admission.acquire()];
    for (let i = 0; i < 20; i++) {
      throttle.answered(Date.now(), 200, undefined);
      if (admission.inFlight < admission.limit) held.push(await admission.acquire());
    }
    expect(admission.window).toBe(3);
    expect(admission.inFlight).toBe(3);
    for (const release of held) release();
  });
});

interface Load {
  /** Referrals, each sending its requests one after another. */
  workers: number;
  /** Requests per referral (each event is a GET and a PUT). */
  requests: number;
  /** The rate limit (a token bucket, as the sandbox's rate-limit mode). */
  burst: number;
  perSecond: number;
  /** Every answer comes this long after its request is sent. */
  rttMs: number;
  permits: number;
  /** Without the slow start: the window opened to the permits at once (as before it existed). */
  noSlowStart?: boolean;
}

interface LoadCount {
  throttled: number;
  /** `429`s for requests sent before the first `429` came back (nothing could hold those back). */
  firstWave: number;
  /** Requests sent before the first `429` came back that Partner Center accepted. */
  acceptedBefore: number;
}

/**
 * The load through a real Admission and InstanceThrottle on a fake clock: each referral sends its requests one
 * after another, a `429`ed request again (after the instance's pause).
 */
async function simulate(load: Load): Promise<LoadCount> {
  vi.useFakeTimers({ now: 1_000_000 });
  try {
    const admission = new Admission({ permits: load.permits });
    const throttle = new InstanceThrottle(admission);
    if (load.noSlowStart) admission.setWindow(load.permits);
    const bucket = new TokenBucket({ perSecond: load.perSecond, burst: load.burst });
    const count: LoadCount = { throttled: 0, firstWave: 0, acceptedBefore: 0 };
    let seen429 = false;
    const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
    const worker = async () => {
      for (let i = 0; i < load.requests; i++) {
        for (;;) {
          const release = await admission.acquire();
          const sentAt = Date.now();
          const before = !seen429;
          const retryAfter = bucket.take();
          await sleep(load.rttMs);
          if (retryAfter === undefined) {
            if (before) count.acceptedBefore++;
            throttle.answered(sentAt, 200, undefined);
            release();
            break;
          }
          count.throttled++;
          if (before) count.firstWave++;
          seen429 = true;
          throttle.answered(sentAt, 429, retryAfter * 1000);
          release();
        }
      }
    };
    const done = Promise.all(Array.from({ length: load.workers }, worker));
    await vi.runAllTimersAsync();
    await done;
    admission.close();
    return count;
  } finally {
    vi.useRealTimers();
  }
}

describe('the first wave of 429s (simulated rate limit)', () => {
  it('costs at most INITIAL_WINDOW + WINDOW_GROWTH × the requests accepted before it, whatever the load and limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          workers: fc.integer({ min: 1, max: 40 }),
          requests: fc.integer({ min: 1, max: 3 }),
          burst: fc.integer({ min: 1, max: 30 }),
          perSecond: fc.integer({ min: 1, max: 20 }),
          rttMs: fc.integer({ min: 1, max: 300 }),
          permits: fc.integer({ min: 1, max: 32 }),
        }),
        async (load) => {
          const count = await simulate(load);
          expect(count.firstWave).toBeLessThanOrEqual(INITIAL_WINDOW + WINDOW_GROWTH * count.acceptedBefore);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("the bench's load (20 referrals × 10 events, burst 10 at 10 requests/s): fewer 429s than with every request admitted at once", async () => {
    const load = { workers: 20, requests: 20, burst: 10, perSecond: 10, rttMs: 5, permits: 32 };
    const slow = await simulate(load);
    const open = await simulate({ ...load, noSlowStart: true });
    // All 20 GETs at once: 10 beyond the burst; the PUTs of the 10 accepted follow before those 429s come back.
    expect(open.firstWave).toBe(20);
    expect(slow.firstWave).toBeLessThanOrEqual(INITIAL_WINDOW + WINDOW_GROWTH * slow.acceptedBefore);
    expect(slow.firstWave).toBeLessThanOrEqual(10);
    expect(slow.throttled - slow.firstWave).toBe(0);
  });
});
