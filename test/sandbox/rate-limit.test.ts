/**
 * The sandbox's rate-limit mode (dev/sandbox/rate-limit.ts): above its rate, `429` with `Retry-After` in
 * Partner Center's throttling shape (docs/partner-center-api.md#error-bodies-and-codes), counted in stats.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TokenBucket } from '../../dev/sandbox/rate-limit.js';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { type PartnerCenterSandbox, startPartnerCenterSandbox } from '../../dev/sandbox/server.js';

let sandbox: PartnerCenterSandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

const get = (url: string) =>
  fetch(`${url}/v1.0/engagements/referrals/${SEED_IDS.newPending}`, { headers: { authorization: 'Bearer t' } });

describe('rate-limit mode', () => {
  it('answers 429 with Retry-After above the burst, in the throttling shape, and counts it', async () => {
    sandbox = await startPartnerCenterSandbox({ rateLimit: { perSecond: 0.5, burst: 2 } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(sandbox.url)).status);
    expect(statuses).toEqual([200, 200, 429]);
    const refused = await get(sandbox.url);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(await refused.json()).toEqual({
      statusCode: 429,
      message: 'Rate limit is exceeded. Try again in 2 seconds.',
    });
    expect(sandbox.stats()).toMatchObject({ requests: 4, throttled: 2, faults: 0 });
  });

  it('setRateLimit ends and starts the mode; reset() keeps it with a full bucket', async () => {
    sandbox = await startPartnerCenterSandbox();
    sandbox.setRateLimit({ perSecond: 1 });
    expect((await get(sandbox.url)).status).toBe(200);
    expect((await get(sandbox.url)).status).toBe(429);
    sandbox.reset();
    expect((await get(sandbox.url)).status).toBe(200);
    expect((await get(sandbox.url)).status).toBe(429);
    sandbox.setRateLimit(undefined);
    expect((await get(sandbox.url)).status).toBe(200);
    expect(sandbox.stats().throttled).toBe(1);
  });

  it('the bucket refills at its rate, up to its burst', () => {
    let now = 0;
    const bucket = new TokenBucket({ perSecond: 10, burst: 3 }, () => now);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([undefined, undefined, undefined, 1]);
    now += 100;
    expect([bucket.take(), bucket.take()]).toEqual([undefined, 1]);
    now += 10_000;
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([undefined, undefined, undefined, 1]);
    expect(() => new TokenBucket({ perSecond: 0 })).toThrow(RangeError);
  });
});
