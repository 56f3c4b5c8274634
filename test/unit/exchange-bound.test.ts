/**
 * The real client against the sandbox on loopback: each HTTP exchange is bounded by its own timeout
 * (`timeoutMs`) and by the event's signal, whichever comes first, and leaves nothing on the event's signal
 * once it is over (one timer and one listener per exchange, released: docs/performance-analysis.md). Counts
 * and outcomes only.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { AdapterError } from '../../shared/core/errors.js';
import type { RequestContext } from '../../shared/partner-center/client.js';
import { clientWorld, closedAfterEach } from '../support/client-world.js';

const opened = closedAfterEach();

function world() {
  return clientWorld(opened, { settings: { UPSTREAM_REQUEST_TIMEOUT_MS: '60000' } });
}

const context = (extra: Partial<RequestContext> = {}): RequestContext => ({
  correlationId: '00000000-0000-4000-8000-000000000001',
  timeoutMs: 60_000,
  ...extra,
});

/** The call's result kind, or its error as plain data. */
async function outcome(call: Promise<unknown>) {
  try {
    await call;
    return 'ok';
  } catch (error) {
    if (!(error instanceof AdapterError)) throw error;
    return { code: error.code, cause: error.cause };
  }
}

describe('one exchange, bounded', () => {
  it('an answer later than timeoutMs: upstream_timeout (a TimeoutError), the request was sent', async () => {
    const { sandbox, client, id } = await world();
    sandbox.injectFault({ method: 'GET', action: { type: 'delay', ms: 10_000 } });
    const result = await outcome(client.getReferral(id, context({ timeoutMs: 50 })));
    expect(result).toMatchObject({ code: 'upstream_timeout', cause: { name: 'TimeoutError' } });
    expect(sandbox.stats().requests).toBe(1);
  });

  it("the event's signal aborting while the request is on the wire ends it at once, with that signal's reason", async () => {
    const { sandbox, client, id } = await world();
    // Held 3 s, with a 60 s timeout: without the event's signal the call would succeed.
    sandbox.injectFault({ method: 'PUT', action: { type: 'delay', ms: 3_000 } });
    const event = new AbortController();
    const read = await client.getReferral(id, context({ abortSignal: event.signal }));
    const write = outcome(client.putReferral(id, { status: 'New' }, read.eTag, context({ abortSignal: event.signal })));
    await vi.waitFor(() => expect(sandbox.stats().requests).toBe(2));
    const reason = new DOMException('the event ran out of time', 'TimeoutError');
    event.abort(reason);
    expect(await write).toEqual({ code: 'upstream_timeout', cause: reason });
  });

  it("an event's signal that has already aborted sends nothing", async () => {
    const { sandbox, client, id } = await world();
    const result = await outcome(client.getReferral(id, context({ abortSignal: AbortSignal.abort() })));
    expect(result).toMatchObject({ code: 'upstream_timeout' });
    expect(sandbox.stats().requests).toBe(0);
  });

  it("nothing stays on the event's signal once an exchange is over: answered, refused or timed out", async () => {
    const { sandbox, client, id } = await world();
    const event = new AbortController();
    const { signal } = event;
    const read = await client.getReferral(id, context({ abortSignal: signal }));
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    expect(await outcome(client.getReferral('no-such-referral', context({ abortSignal: signal })))).toMatchObject({
      code: 'referral_not_found',
    });
    sandbox.injectFault({ method: 'PUT', action: { type: 'delay', ms: 10_000 } });
    const timedOut = await outcome(
      client.putReferral(id, {}, read.eTag, context({ abortSignal: signal, timeoutMs: 50 })),
    );
    expect(timedOut).toMatchObject({ code: 'upstream_timeout' });
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    expect(signal.aborted).toBe(false);
  });
});
