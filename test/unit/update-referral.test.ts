/**
 * The update use case in process, one test per rule of its read → plan → write loop, against a scripted
 * Partner Center (test/support/scripted-partner-center.ts): the script is the exact sequence of calls
 * expected, so a PUT too many fails the test. Jitter draws 0 and delays are milliseconds.
 * Partner Center behaviour: docs/partner-center-api.md,
 * https://learn.microsoft.com/partner-center/developer/update-a-referral
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdapterError } from '../../shared/core/errors.js';
import { newStats } from '../../shared/telemetry/event-record.js';
import { GET, PUT, ScriptedPartnerCenter } from '../support/scripted-partner-center.js';
import { CORRELATION_ID, referral, runUpdate, updateDeps, updateEvent } from '../support/use-cases.js';

/** The error `promise` rejects with (the test fails when it resolves). */
async function failure(promise: Promise<unknown>): Promise<AdapterError> {
  const error = await promise.then(
    (result) => {
      throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
    },
    (e: unknown) => e,
  );
  // Anything else (a script error of the fake, a TypeError) fails the test with its own message.
  if (!(error instanceof AdapterError)) throw error;
  return error;
}

const pending = referral({ eTag: '"e1"' });
const activate = updateEvent({ status: 'Active', dealValue: 75000 });

afterEach(() => {
  vi.useRealTimers();
});

describe('a PUT refused because the referral changed (412/409)', () => {
  it.each([412, 409])(
    '%i: re-reads, re-applies the intent to the fresh state and writes with its eTag',
    async (status) => {
      // Between our read and our write, a seller edited the notes and the name: the second PUT keeps them.
      const edited = referral({
        eTag: '"e2"',
        name: 'Fabrikam, renamed by the seller',
        details: { notes: 'Edited by the seller' },
      });
      const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.status(status), GET.ok(edited), PUT.ok()]);

      const result = await runUpdate(activate, updateDeps(pc));

      expect(result.outcome).toBe('updated');
      expect(pc.sequence).toBe('GET PUT GET PUT');
      const [first, second] = pc.puts;
      expect(first?.ifMatch).toBe('"e1"');
      expect(second?.ifMatch).toBe('"e2"');
      const { links: _links, ...editedWithoutLinks } = edited;
      expect(second?.body).toEqual({
        ...editedWithoutLinks,
        status: 'Active',
        substatus: 'Accepted',
        details: { ...(edited.details as object), dealValue: 75000 },
      });
      expect(result.eTag).toBe(pc.held?.eTag);
    },
  );

  it('re-checks the transition rules on the fresh state: a referral closed meanwhile is not written', async () => {
    const closed = referral({ eTag: '"e2"', status: 'Closed', substatus: 'Lost' });
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.status(412), GET.ok(closed)]);

    const error = await failure(runUpdate(activate, updateDeps(pc)));

    expect(error.code).toBe('referral_closed');
    expect(pc.puts).toHaveLength(1);
  });

  it('gives up with 409 conflict once CONCURRENCY_MAX_RETRIES re-reads were refused too', async () => {
    const refused = (n: number) => [GET.ok(referral({ eTag: `"e${n}"` })), PUT.status(412)];
    const pc = new ScriptedPartnerCenter([...refused(1), ...refused(2), ...refused(3)]);

    const error = await failure(runUpdate(activate, updateDeps(pc, { CONCURRENCY_MAX_RETRIES: '2' })));

    expect(error.code).toBe('conflict');
    expect(error.status).toBe(409);
    expect(error.retryable).toBe(true);
    expect(error.retryAfterSeconds).toBeGreaterThan(0);
    expect(pc.puts).toHaveLength(3);
  });
});

describe('a PUT whose answer was lost (timeout, reset, 5xx)', () => {
  it.each(['timeout', 'reset', 502] as const)(
    '%s after the write landed: re-reads, answers updated, never sends the PUT again',
    async (via) => {
      const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.lost({ landed: true, via }), GET.current()]);

      const result = await runUpdate(activate, updateDeps(pc));

      expect(result.outcome).toBe('updated');
      expect(result.changes.map((c) => c.path)).toEqual(['/details/dealValue', '/status', '/substatus']);
      expect(result.eTag).toBe(pc.held?.eTag);
      expect(pc.puts).toHaveLength(1);
      expect(pc.sequence).toBe('GET PUT GET');
    },
  );

  it('the write did not land: it is written again, only after a re-read, with the fresh eTag', async () => {
    const reread = referral({ eTag: '"e2"', statusReason: 'touched meanwhile' });
    const pc = new ScriptedPartnerCenter([
      GET.ok(pending),
      PUT.lost({ landed: false, via: 'reset' }),
      GET.ok(reread),
      PUT.ok(),
    ]);

    const result = await runUpdate(activate, updateDeps(pc));

    expect(result.outcome).toBe('updated');
    expect(pc.sequence).toBe('GET PUT GET PUT');
    expect(pc.puts[1]?.ifMatch).toBe('"e2"');
    expect(pc.puts[1]?.body?.statusReason).toBe('touched meanwhile');
  });

  it('a lost write whose values turn up after a later 412 counts as ours: updated (it may have landed late)', async () => {
    // Lost answer; the re-read does not show our values (the PUT may still be in flight upstream), so we
    // write again; that PUT meets a 412; the next read holds our values. Whether the first PUT landed late
    // or another writer set the same values cannot be told apart: the answer is `updated` with our
    // changes, the likelier case (docs/behaviour.md). Nothing is written a third time.
    const reread = referral({ eTag: '"e2"' });
    const landed = referral({ eTag: '"e3"', status: 'Active', substatus: 'Accepted', details: { dealValue: 75000 } });
    const pc = new ScriptedPartnerCenter([
      GET.ok(pending),
      PUT.lost({ landed: false, via: 'timeout' }),
      GET.ok(reread),
      PUT.status(412),
      GET.ok(landed),
    ]);

    const result = await runUpdate(activate, updateDeps(pc));

    expect(result.outcome).toBe('updated');
    expect(result.changes.map((change) => change.path)).toEqual(['/details/dealValue', '/status', '/substatus']);
    expect(pc.sequence).toBe('GET PUT GET PUT GET');
  });
});

describe('retryable failures and the time budget', () => {
  it('a Retry-After above RETRY_MAX_DELAY_MS is handed back to the caller, not waited out', async () => {
    const pc = new ScriptedPartnerCenter([GET.status(429, { retryAfterSeconds: 3 })]);

    const started = performance.now();
    const error = await failure(runUpdate(activate, updateDeps(pc, { RETRY_MAX_DELAY_MS: '2000' })));

    expect(error.code).toBe('upstream_unavailable');
    expect(error.retryAfterSeconds).toBe(3);
    expect(pc.calls).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('a transient GET failure is read again, up to UPSTREAM_MAX_RETRIES, then handed back with a Retry-After', async () => {
    const pc = new ScriptedPartnerCenter([GET.status(503), GET.network('timeout'), GET.status(500)]);
    const stats = newStats();

    const error = await failure(runUpdate(activate, updateDeps(pc, { UPSTREAM_MAX_RETRIES: '2' }), { stats }));

    expect(error.code).toBe('upstream_error');
    expect(error.retryAfterSeconds).toBeGreaterThan(0);
    expect(pc.sequence).toBe('GET GET GET');
    // The log line's `retries` counts the retries made: 2, never 3 when they run out (#11 item 6).
    expect(stats.retries).toBe(2);
  });

  it('once UPSTREAM_BUDGET_MS is spent, no further call starts: upstream_timeout', async () => {
    vi.useFakeTimers({ toFake: ['Date'] }); // Date stands still unless moved; timers stay real
    // The read answers 2 s into a 2 s budget (the clock moves while it is in flight): no PUT may start.
    const slowRead = GET.ok(pending, undefined, { onCall: () => vi.setSystemTime(Date.now() + 2_000) });
    const pc = new ScriptedPartnerCenter([slowRead]);
    const settings = { UPSTREAM_BUDGET_MS: '2000', UPSTREAM_REQUEST_TIMEOUT_MS: '15000' };

    const error = await failure(runUpdate(activate, updateDeps(pc, settings)));

    expect(error.code).toBe('upstream_timeout');
    expect(error.message).toContain('2000 ms');
    expect(pc.sequence).toBe('GET');
    // The exchange itself was given the budget left, not the longer per-request timeout.
    expect(pc.calls[0]?.timeoutMs).toBe(2_000);
  });
});

describe('final answers', () => {
  it('404: referral_not_found at once, not retried', async () => {
    const pc = new ScriptedPartnerCenter([GET.status(404)]);

    const error = await failure(runUpdate(activate, updateDeps(pc)));

    expect(error.code).toBe('referral_not_found');
    expect(error.status).toBe(404);
    expect(error.retryable).toBe(false);
    expect(pc.calls).toHaveLength(1);
  });

  it('422 transition_not_allowed (Active → New): no PUT, the allowed targets named', async () => {
    const active = referral({ status: 'Active', substatus: 'Accepted' });
    const pc = new ScriptedPartnerCenter([GET.ok(active)]);

    const error = await failure(runUpdate(updateEvent({ status: 'New', substatus: 'Pending' }), updateDeps(pc)));

    expect(error.code).toBe('transition_not_allowed');
    expect(error.status).toBe(422);
    expect(error.extensions.allowedTargets).toContainEqual({ status: 'Closed', substatus: 'Won' });
    expect(pc.puts).toHaveLength(0);
  });

  it('unchanged when the referral already holds every value: no PUT', async () => {
    const done = referral({ status: 'Active', substatus: 'Accepted', details: { dealValue: 75000 } });
    const pc = new ScriptedPartnerCenter([GET.ok(done)]);

    const result = await runUpdate(activate, updateDeps(pc));

    expect(result).toMatchObject({ outcome: 'unchanged', changes: [], status: 'Active', eTag: '"e1"' });
    expect(pc.sequence).toBe('GET');
  });

  it('dry run: no PUT, answers the PUT it would send (If-Match and body)', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending)]);

    const result = await runUpdate({ ...activate, dryRun: true }, updateDeps(pc));

    expect(result.outcome).toBe('dry-run');
    expect(pc.sequence).toBe('GET');
    expect(result.wouldPut?.ifMatch).toBe('"e1"');
    const { links: _links, ...pendingWithoutLinks } = pending;
    expect(result.wouldPut?.body).toEqual({
      ...pendingWithoutLinks,
      status: 'Active',
      substatus: 'Accepted',
      details: { ...(pending.details as object), dealValue: 75000 },
    });
  });

  it('dry run with PARTNER_CENTER_WRITE_METHOD=patch: answers the JSON Patch it would send, in place of wouldPut', async () => {
    // A dry run writes nothing: the fake only has to say which method its writes use.
    const pc = Object.assign(new ScriptedPartnerCenter([GET.ok(pending)]), { writeMethod: 'patch' as const });

    const result = await runUpdate({ ...activate, dryRun: true }, updateDeps(pc));

    expect(pc.sequence).toBe('GET');
    expect(result).not.toHaveProperty('wouldPut');
    expect(result.wouldPatch).toEqual({
      ifMatch: '"e1"',
      operations: [
        { op: 'replace', path: '/details/dealValue', value: 75000 },
        { op: 'replace', path: '/status', value: 'Active' },
        { op: 'replace', path: '/substatus', value: 'Accepted' },
      ],
    });
    const noop = Object.assign(
      new ScriptedPartnerCenter([
        GET.ok(referral({ status: 'Active', substatus: 'Accepted', details: { dealValue: 75000 } })),
      ]),
      {
        writeMethod: 'patch' as const,
      },
    );
    expect(await runUpdate({ ...activate, dryRun: true }, updateDeps(noop))).toMatchObject({
      wouldPatch: null,
      changes: [],
    });
  });

  it('sends the event correlation id on every call', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.status(412), GET.current(), PUT.ok()]);

    await runUpdate(activate, updateDeps(pc));

    expect(pc.calls.map((c) => c.correlationId)).toEqual(Array(4).fill(CORRELATION_ID));
  });
});

describe('the event deadline, passed as abortSignal', () => {
  it('an abort during a backoff wait answers the retryable error being retried, not an internal error', async () => {
    const controller = new AbortController();
    const pc = new ScriptedPartnerCenter([
      GET.status(503, { retryAfterSeconds: 1, onCall: () => setTimeout(() => controller.abort(), 5) }),
    ]);

    const failure = await runUpdate(activate, updateDeps(pc, { RETRY_MAX_DELAY_MS: '5000' }), {
      abortSignal: controller.signal,
    }).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(AdapterError);
    expect(failure).toMatchObject({ code: 'upstream_unavailable', retryable: true, retryAfterSeconds: 1 });
    expect(pc.sequence).toBe('GET');
  });
});
