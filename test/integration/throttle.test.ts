/**
 * Throttling obeyed by the whole instance (docs/partner-center-api.md#throttling-and-retries): the real client
 * and update use case against the loopback sandbox's rate-limit mode, the events of one referral one after
 * another as in the app (dev/bench/throttle.ts runs the same load for `npm run bench`). Counts only.
 */
import { expect, it } from 'vitest';
import { runLoad } from '../../dev/bench/throttle.js';

const EVENTS = 200;
const REFERRALS = 20;

it("200 events on 20 referrals under a 10 requests/s rate limit: every event applied, the first wave of 429s within the slow start's bound, ≤ 0.05 429s per event in all", async () => {
  const result = await runLoad({ events: EVENTS, referrals: REFERRALS, rateLimit: { perSecond: 10 } });
  expect(result.failures).toEqual({});
  expect(result.applied).toBe(EVENTS);
  expect(result.wrongFinalValues).toBe(0);
  expect(result.throttlesSeen).toBe(result.throttled);
  // The instance learns of the limit from its first 429: the requests already sent then meet it too. The slow
  // start holds those to 2 + half the requests accepted before (shared/partner-center/throttle.ts), instead of
  // one per referral and one per follow-up PUT (20 here without it); nothing after that first wave.
  expect(result.firstWave).toBeLessThanOrEqual(result.firstWaveBound);
  expect(result.throttled / EVENTS).toBeLessThanOrEqual(0.05);
}, 120_000);
