/**
 * The real client against the sandbox on loopback: one `429` with `Retry-After` pauses every call of the
 * instance until then (docs/partner-center-api.md#throttling-and-retries), and a call waiting for its turn
 * never sends once its deadline passes (docs/behaviour.md#admission-to-partner-center). Counts only.
 */
import { describe, expect, it } from 'vitest';
import { AdapterError } from '../../shared/core/errors.js';
import type { RequestContext } from '../../shared/partner-center/client.js';
import { clientWorld, closedAfterEach } from '../support/client-world.js';

const opened = closedAfterEach();

function world(options: { perSecond?: number; connections?: number; maxDelayMs?: number } = {}) {
  return clientWorld(opened, {
    sandbox: options.perSecond ? { rateLimit: { perSecond: options.perSecond, burst: 1 } } : {},
    settings: {
      UPSTREAM_REQUEST_TIMEOUT_MS: '5000',
      RETRY_MAX_DELAY_MS: String(options.maxDelayMs ?? 10_000),
      UPSTREAM_CONNECTIONS: String(options.connections ?? 4),
    },
  });
}

const context = (extra: Partial<RequestContext> = {}): RequestContext => ({
  correlationId: '00000000-0000-4000-8000-000000000001',
  timeoutMs: 5000,
  ...extra,
});

/** The error of a call as plain data (or the call's result kind). */
async function outcome(call: Promise<unknown>) {
  try {
    await call;
    return 'ok';
  } catch (error) {
    if (!(error instanceof AdapterError)) throw error;
    return { code: error.code, retryAfterSeconds: error.retryAfterSeconds, upstreamStatus: error.upstreamStatus };
  }
}

describe('one 429 with Retry-After pauses the instance', () => {
  it('the next calls wait until then instead of meeting the 429 each; those that cannot wait fail fast, unsent', async () => {
    // One request per second: the first passes, the second is answered 429 with Retry-After: 1.
    const { sandbox, client, id } = await world({ perSecond: 1 });
    expect(await outcome(client.getReferral(id, context()))).toBe('ok');
    expect(await outcome(client.getReferral(id, context()))).toEqual({
      code: 'upstream_unavailable',
      retryAfterSeconds: 1,
      upstreamStatus: 429,
    });
    expect(sandbox.stats()).toMatchObject({ requests: 2, throttled: 1 });

    // A call whose time left is shorter than the pause: 503 with the Retry-After at once, nothing sent.
    expect(await outcome(client.getReferral(id, context({ timeoutMs: 100 })))).toEqual({
      code: 'upstream_unavailable',
      retryAfterSeconds: 1,
      upstreamStatus: 429,
    });
    // A call whose deadline passes while it waits for the pause: the same, nothing sent.
    expect(await outcome(client.getReferral(id, context({ abortSignal: AbortSignal.timeout(20) })))).toEqual({
      code: 'upstream_unavailable',
      retryAfterSeconds: 1,
      upstreamStatus: 429,
    });
    expect(sandbox.stats().requests).toBe(2);

    // The next call waits out the pause, then passes: without the pause it would have met the 429 too.
    expect(await outcome(client.getReferral(id, context()))).toBe('ok');
    expect(sandbox.stats()).toMatchObject({ requests: 3, throttled: 1 });
  });
});

describe('a pause longer than the event may wait', () => {
  it('a pause over RETRY_MAX_DELAY_MS fails the next call at once with its Retry-After, unsent, whatever time is left', async () => {
    const { sandbox, client, id } = await world({ perSecond: 1, maxDelayMs: 500 });
    expect(await outcome(client.getReferral(id, context()))).toBe('ok');
    expect(await outcome(client.getReferral(id, context()))).toMatchObject({ upstreamStatus: 429 });
    expect(await outcome(client.getReferral(id, context()))).toEqual({
      code: 'upstream_unavailable',
      retryAfterSeconds: 1,
      upstreamStatus: 429,
    });
    expect(sandbox.stats().requests).toBe(2);
  });
});

describe('admission', () => {
  it('a call whose deadline passes while it waits for a connection leaves with upstream_timeout, unsent', async () => {
    const { sandbox, client, id } = await world({ connections: 1 });
    sandbox.injectFault({ method: 'GET', action: { type: 'delay', ms: 300 } });
    const slow = client.getReferral(id, context());
    const waiting = outcome(client.getReferral(id, context({ abortSignal: AbortSignal.timeout(50) })));
    expect(await waiting).toEqual({
      code: 'upstream_timeout',
      retryAfterSeconds: undefined,
      upstreamStatus: undefined,
    });
    expect(await outcome(slow)).toBe('ok');
    expect(sandbox.stats().requests).toBe(1);
  });

  it("a request's timeout starts when it is sent, not while it waits for its turn", async () => {
    // One connection, each answer 150 ms late, timeout 250 ms: three calls at once take ~450 ms in all, yet
    // none times out (with the timeout started on arrival, the third would).
    const { sandbox, client, id } = await world({ connections: 1 });
    sandbox.injectFault({ method: 'GET', times: 3, action: { type: 'delay', ms: 150 } });
    const calls = [0, 1, 2].map(() => outcome(client.getReferral(id, context({ timeoutMs: 250 }))));
    expect(await Promise.all(calls)).toEqual(['ok', 'ok', 'ok']);
    expect(sandbox.stats().requests).toBe(3);
  });
});
