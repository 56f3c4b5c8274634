/**
 * The queue worker (shared/use-cases/deliver-queued-event.ts) and the poison queue's handler
 * (shared/use-cases/dead-letter-event.ts), in process: events accepted through the pipeline, then one
 * message at a time on the scripted Partner Center, with a fake clock and chance.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { problemSchema, updateResultSchema } from '../../shared/contract/responses.js';
import { AdapterError } from '../../shared/core/errors.js';
import type { DeliveryRecord } from '../../shared/delivery/store.js';
import { createMemoryIdempotencyStore } from '../../shared/idempotency/store.js';
import type { PartnerCenterClient } from '../../shared/partner-center/client.js';
import { retryDelaySeconds, type WorkerClock } from '../../shared/use-cases/deliver-queued-event.js';
import { GET, PUT, ScriptedPartnerCenter } from '../support/scripted-partner-center.js';
import {
  deadLetter,
  deliver,
  poll,
  REFERRAL_ID,
  referral,
  type TestApp,
  testApp,
  withDelivery,
  work,
} from '../support/use-cases.js';

const ASYNC = { Prefer: 'respond-async' };
const event = (fields: Record<string, unknown> = {}) => ({ referralId: REFERRAL_ID, ...fields });
/** No in-process retries: one upstream answer per attempt. */
const ONE_TRY = { UPSTREAM_MAX_RETRIES: '0' };

/** A clock at `offsetMs` after the event's acceptance, drawing `random`. */
function clockAt(record: DeliveryRecord, offsetMs = 0, random = 0): WorkerClock & { advance(ms: number): void } {
  let now = Date.parse(record.acceptedAt) + offsetMs;
  return { now: () => now, random: () => random, advance: (ms) => (now += ms) };
}

async function accept(app: TestApp, body: Record<string, unknown>) {
  const accepted = await deliver(app, { body, headers: ASYNC });
  expect(accepted.status).toBe(202);
  return { statusUrl: String(accepted.json.statusUrl), eventId: String(accepted.json.eventId) };
}

function recordOf(app: TestApp, eventId: string): DeliveryRecord {
  const delivery = app.runtimeValue.delivery;
  const record =
    delivery &&
    (delivery.store as unknown as { records(): DeliveryRecord[] }).records().find((r) => r.eventId === eventId);
  if (!record) throw new Error(`no record of ${eventId}`);
  return record;
}

describe('one attempt', () => {
  it('success: succeeded, the 200 stored without its correlation id, changed paths, the event dropped; the status URL answers it with state', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(referral()), PUT.ok()]);
    const app = testApp(pc);
    const { queue } = withDelivery(app);
    const { statusUrl, eventId } = await accept(app, event({ eventId: 'evt-ok', dealValue: 1200 }));

    await work(app, eventId, clockAt(recordOf(app, eventId), 1000));

    const record = recordOf(app, eventId);
    expect(record).toMatchObject({
      state: 'succeeded',
      attempts: 1,
      event: null,
      changedPaths: ['/details/dealValue'],
      nextAttemptAt: null,
    });
    expect(record.answer?.status).toBe(200);
    expect(Object.keys(record.answer?.headers ?? {}).map((h) => h.toLowerCase())).not.toContain('ms-correlationid');
    expect(pc.sequence).toBe('GET PUT');
    expect(queue.sent).toHaveLength(1);

    const done = await poll(app, statusUrl, {
      headers: { 'MS-CorrelationId': '00000000-0000-4000-8000-00000000abcd' },
    });
    expect(done.status).toBe(200);
    expect(updateResultSchema.parse(done.json)).toMatchObject({
      outcome: 'updated',
      state: 'succeeded',
      eventId: 'evt-ok',
    });
    expect(done.headers['MS-CorrelationId']).toBe('00000000-0000-4000-8000-00000000abcd');

    const line = JSON.parse(app.lines.at(-1) ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({
      event: 'referral-update',
      eventId,
      status: 200,
      delivery: { attempt: 1, state: 'succeeded' },
    });
    expect(JSON.stringify(app.lines)).not.toContain('Fabrikam');
  });

  it('a final failure (404): failed with its last error, at once; the status URL answers the problem with state failed', async () => {
    const pc = new ScriptedPartnerCenter([GET.status(404)]);
    const app = testApp(pc);
    const { queue } = withDelivery(app);
    const { statusUrl, eventId } = await accept(app, event({ eventId: 'evt-404', status: 'Active' }));

    await work(app, eventId, clockAt(recordOf(app, eventId)));

    expect(recordOf(app, eventId)).toMatchObject({
      state: 'failed',
      attempts: 1,
      event: null,
      lastError: { code: 'referral_not_found', status: 404 },
    });
    expect(queue.sent).toHaveLength(1);
    const done = await poll(app, statusUrl);
    expect(done.status).toBe(404);
    expect(problemSchema.parse(done.json)).toMatchObject({ code: 'referral_not_found', state: 'failed' });
    expect(done.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('a transient failure: a new message delayed by the answer’s Retry-After, retrying with nextAttemptAt and the last error; the next attempt applies it', async () => {
    const pc = new ScriptedPartnerCenter([GET.status(429, { retryAfterSeconds: 120 })]);
    const app = testApp(pc, { settings: ONE_TRY });
    const { queue } = withDelivery(app);
    const { statusUrl, eventId } = await accept(app, event({ eventId: 'evt-429', status: 'Active' }));
    const clock = clockAt(recordOf(app, eventId), 0, 0);

    await work(app, eventId, clock);

    const retrying = recordOf(app, eventId);
    expect(retrying).toMatchObject({
      state: 'retrying',
      attempts: 1,
      lastError: { code: 'upstream_unavailable', status: 503 },
    });
    expect(retrying.nextAttemptAt).toBe(new Date(clock.now() + 120_000).toISOString());
    expect(retrying.event).not.toBeNull();
    expect(queue.sent.at(-1)).toEqual({ message: { v: 1, eventId }, delaySeconds: 120 });
    const line = JSON.parse(app.lines.at(-1) ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({
      status: 503,
      code: 'upstream_unavailable',
      delivery: { attempt: 1, state: 'retrying', retryInSeconds: 120 },
    });

    const waiting = await poll(app, statusUrl, { now: clock.now });
    expect(waiting.status).toBe(202);
    expect(waiting.headers['Retry-After']).toBe('60');
    expect(waiting.json).toMatchObject({
      state: 'retrying',
      attempts: 1,
      lastError: { code: 'upstream_unavailable', status: 503 },
    });

    pc.append(GET.ok(referral()), PUT.ok());
    clock.advance(120_000);
    await work(app, eventId, clock);
    expect(recordOf(app, eventId)).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(queue.sent).toHaveLength(2);
  });

  it('without Retry-After, the delay is the jittered backoff: attempt n waits at most min(max, min × 2^(n-1))', async () => {
    const pc = new ScriptedPartnerCenter([GET.status(500), GET.status(500), GET.status(500)]);
    const app = testApp(pc, { settings: ONE_TRY });
    const { queue } = withDelivery(app, { retryMinSeconds: 30, retryMaxSeconds: 100 });
    const { eventId } = await accept(app, event({ eventId: 'evt-500', status: 'Active' }));
    const clock = clockAt(recordOf(app, eventId), 0, 0.999_999);
    for (let i = 0; i < 3; i++) {
      await work(app, eventId, clock);
      clock.advance(200_000);
    }
    expect(queue.sent.slice(1).map((s) => s.delaySeconds)).toEqual([30, 60, 100]);
    expect(recordOf(app, eventId).lastError).toEqual({ code: 'upstream_error', status: 502 });
  });

  it('past its max age: dead_lettered with deadLetteredAt, no new message; the status URL answers 424 dead_lettered with how to replay', async () => {
    const pc = new ScriptedPartnerCenter([GET.status(503)]);
    const app = testApp(pc, { settings: ONE_TRY });
    const { queue, config } = withDelivery(app, { maxAgeSeconds: 3600 });
    const { statusUrl, eventId } = await accept(app, event({ eventId: 'evt-old', status: 'Active' }));
    const clock = clockAt(recordOf(app, eventId), (config.maxAgeSeconds - 10) * 1000, 0.5);

    await work(app, eventId, clock);

    const record = recordOf(app, eventId);
    expect(record).toMatchObject({
      state: 'dead_lettered',
      attempts: 1,
      lastError: { code: 'upstream_unavailable', status: 503 },
    });
    expect(record.deadLetteredAt).toBe(new Date(clock.now()).toISOString());
    expect(record.event).not.toBeNull();
    expect(queue.sent).toHaveLength(1);

    const given = await poll(app, statusUrl);
    expect(given.status).toBe(424);
    expect(problemSchema.parse(given.json)).toMatchObject({
      code: 'dead_lettered',
      retryable: false,
      state: 'dead_lettered',
      eventId,
      referralId: REFERRAL_ID,
      attempts: 1,
      lastError: { code: 'upstream_unavailable', status: 503 },
      replay: { method: 'POST', path: `/api/referral-updates/events/${eventId}/replay` },
    });
  });
});

describe('states are never overwritten once final', () => {
  it('a final state written by another attempt while this one ran stays as it is', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { store } = withDelivery(app);
    const { eventId } = await accept(app, event({ eventId: 'evt-race', status: 'Active' }));
    const pc = new ScriptedPartnerCenter([
      GET.status(503, {
        onCall: async () => {
          const current = await store.get(eventId);
          if (current) await store.update(current, { state: 'succeeded', event: null, changedPaths: ['/status'] });
        },
      }),
    ]);
    app.runtimeValue.client = pc;
    app.runtimeValue.config = {
      ...app.runtimeValue.config,
      retry: { ...app.runtimeValue.config.retry, maxRetries: 0 },
    };

    await work(app, eventId, clockAt(recordOf(app, eventId)));

    expect(recordOf(app, eventId)).toMatchObject({ state: 'succeeded', changedPaths: ['/status'], attempts: 1 });
    const line = JSON.parse(app.lines.at(-1) ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({ delivery: { state: 'superseded' } });
  });

  it('a duplicate message for an event waiting to retry ends at once: no attempt before its nextAttemptAt', async () => {
    const pc = new ScriptedPartnerCenter([]);
    const app = testApp(pc);
    const { store } = withDelivery(app);
    const { eventId } = await accept(app, event({ eventId: 'evt-early', status: 'Active' }));
    const record = recordOf(app, eventId);
    const due = Date.parse(record.acceptedAt) + 120_000;
    await store.update(record, { state: 'retrying', attempts: 1, nextAttemptAt: new Date(due).toISOString() });

    await work(app, eventId, { now: () => due - 60_000, random: () => 0.5 });

    expect(pc.calls).toHaveLength(0);
    expect(recordOf(app, eventId)).toMatchObject({ state: 'retrying', attempts: 1 });
  });

  it('an attempt that applied the event replaces a dead_lettered written by the poison handler meanwhile', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { store } = withDelivery(app);
    const { eventId } = await accept(app, event({ eventId: 'evt-poisoned-meanwhile', status: 'Active' }));
    app.runtimeValue.client = new ScriptedPartnerCenter([
      GET.ok(referral(), undefined, {
        onCall: async () => {
          const current = await store.get(eventId);
          if (current) await store.update(current, { state: 'dead_lettered', deadLetteredAt: current.acceptedAt });
        },
      }),
      PUT.ok(),
    ]);

    await work(app, eventId, clockAt(recordOf(app, eventId)));

    expect(recordOf(app, eventId)).toMatchObject({ state: 'succeeded', changedPaths: ['/status', '/substatus'] });
  });

  it.each(['succeeded', 'failed', 'dead_lettered'] as const)('a message for a %s event does nothing', async (state) => {
    const pc = new ScriptedPartnerCenter([]);
    const app = testApp(pc);
    const { store } = withDelivery(app);
    const { eventId } = await accept(app, event({ eventId: `evt-${state}`, status: 'Active' }));
    await store.update(recordOf(app, eventId), { state });
    const before = recordOf(app, eventId);
    await work(app, eventId);
    expect(recordOf(app, eventId)).toEqual(before);
    expect(pc.calls).toHaveLength(0);
  });
});

describe('ordering and idempotency with the synchronous path', () => {
  it('an event without occurredAt is ordered by its acceptance: a later synchronous event’s field wins, the queued one is stale', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(referral()), PUT.ok()]);
    const app = testApp(pc);
    withDelivery(app);
    const { eventId } = await accept(app, event({ eventId: 'evt-unordered', dealValue: 1 }));
    const orderedAt = recordOf(app, eventId).orderedAt;
    const later = new Date(Date.parse(orderedAt) + 1000).toISOString();
    const sync = await deliver(app, { body: event({ eventId: 'evt-later', dealValue: 2, occurredAt: later }) });
    expect(sync.status).toBe(200);

    await work(app, eventId, clockAt(recordOf(app, eventId), 2000));

    const record = recordOf(app, eventId);
    expect(record.state).toBe('succeeded');
    expect(JSON.parse(record.answer?.body ?? '{}')).toMatchObject({ outcome: 'stale', lastAppliedOccurredAt: later });
    expect(pc.sequence).toBe('GET PUT');
  });

  it('an event without occurredAt is applied when the other event is earlier than its acceptance', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(referral()), PUT.ok(), GET.current(), PUT.ok()]);
    const app = testApp(pc);
    withDelivery(app);
    const { eventId } = await accept(app, event({ eventId: 'evt-after', dealValue: 1 }));
    const earlier = new Date(Date.parse(recordOf(app, eventId).orderedAt) - 60_000).toISOString();
    await deliver(app, { body: event({ eventId: 'evt-earlier', dealValue: 2, occurredAt: earlier }) });

    await work(app, eventId, clockAt(recordOf(app, eventId), 2000));

    expect(JSON.parse(recordOf(app, eventId).answer?.body ?? '{}')).toMatchObject({ outcome: 'updated' });
    expect(pc.puts.at(-1)?.body?.details).toMatchObject({ dealValue: 1 });
  });

  it('a synchronous redelivery of the same event after the worker applied it gets the stored answer (same fingerprint), not 422', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(referral()), PUT.ok()]);
    const app = testApp(pc);
    withDelivery(app);
    const body = event({ eventId: 'evt-both', dealValue: 3 });
    const { eventId } = await accept(app, body);
    await work(app, eventId, clockAt(recordOf(app, eventId), 1000));

    const sync = await deliver(app, { body });
    expect(sync.status).toBe(200);
    expect(sync.headers['Idempotent-Replayed']).toBe('true');
    expect(pc.sequence).toBe('GET PUT');
  });
});

describe('messages that are not for the worker, and crashes', () => {
  it('a message that is not ours, or for an unknown event, is logged and done with', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    withDelivery(app);
    await work(app, { hello: 'world' });
    await work(app, 'evt-unknown');
    expect(app.lines.join('\n')).toMatch(/DELIVERY_MESSAGE_INVALID[\s\S]*DELIVERY_EVENT_NOT_FOUND/);
  });

  it('without delivery configured (memory store) the worker logs and returns', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    await work(app, 'evt-x');
    expect(app.lines.join('\n')).toContain('DELIVERY_NOT_CONFIGURED');
  });

  it('a retry whose record write fails after its message was sent is not thrown: one chain of attempts, not two', async () => {
    const pc = new ScriptedPartnerCenter([GET.status(429, { retryAfterSeconds: 120 })]);
    const app = testApp(pc, { settings: ONE_TRY });
    const { queue, store } = withDelivery(app);
    const { eventId } = await accept(app, event({ eventId: 'evt-record-fails', status: 'Active' }));
    const update = store.update.bind(store);
    store.update = async (id, changes, options) => {
      if (changes.state === 'retrying') throw new Error('the Table is unavailable (in process)');
      return update(id, changes, options);
    };

    await work(app, eventId, clockAt(recordOf(app, eventId), 0, 0));

    expect(queue.sent).toEqual([expect.anything(), { message: { v: 1, eventId }, delaySeconds: 120 }]);
    expect(recordOf(app, eventId)).toMatchObject({ state: 'running', attempts: 1 });
    expect(app.lines.some((line) => line.includes('DELIVERY_RECORD_FAILED'))).toBe(true);
  });

  it('an unexpected failure is thrown, so that the host delivers the message again', async () => {
    const idempotency = createMemoryIdempotencyStore();
    idempotency.begin = async () => {
      throw new Error('bug');
    };
    const app = testApp(new ScriptedPartnerCenter([]), { idempotency });
    withDelivery(app);
    const { eventId } = await accept(app, event({ eventId: 'evt-bug', status: 'Active' }));
    await expect(work(app, eventId)).rejects.toThrow('bug');
    expect(recordOf(app, eventId)).toMatchObject({ state: 'running', attempts: 1 });
  });
});

describe('the poison queue', () => {
  it('marks the event dead_lettered with poison_message', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    withDelivery(app);
    const { eventId, statusUrl } = await accept(app, event({ eventId: 'evt-poison', status: 'Active' }));
    await deadLetter(app, eventId, () => Date.parse('2030-01-01T00:00:00Z'));
    expect(recordOf(app, eventId)).toMatchObject({
      state: 'dead_lettered',
      deadLetteredAt: '2030-01-01T00:00:00.000Z',
      lastError: { code: 'poison_message', status: 500 },
    });
    const given = await poll(app, statusUrl);
    expect(given.status).toBe(424);
    // It says what happened: the poison queue, not a maximum age it did not reach.
    expect(String(given.json.detail)).toContain('poison queue');
    expect(String(given.json.detail)).not.toContain('ASYNC_MAX_AGE_SECONDS');
  });

  it('leaves a final event as it is, and logs a message that is not ours', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { store } = withDelivery(app);
    const { eventId } = await accept(app, event({ eventId: 'evt-done', status: 'Active' }));
    await store.update(recordOf(app, eventId), { state: 'succeeded' });
    await deadLetter(app, eventId);
    expect(recordOf(app, eventId).state).toBe('succeeded');
    await deadLetter(app, { v: 2, eventId });
    expect(app.lines.join('\n')).toContain('DELIVERY_POISON_MESSAGE_INVALID');
  });
});

describe('retry delays (properties)', () => {
  const settings = fc
    .record({ min: fc.integer({ min: 1, max: 3600 }), span: fc.integer({ min: 0, max: 86_400 }) })
    .map(({ min, span }) => ({ retryMinSeconds: min, retryMaxSeconds: Math.min(86_400, min + span) }));

  it('never before Retry-After, at least 1 s, at most the larger of ASYNC_RETRY_MAX_SECONDS and Retry-After', () => {
    fc.assert(
      fc.property(
        settings,
        fc.integer({ min: 1, max: 100 }),
        fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (config, attempts, retryAfter, random) => {
          const delay = retryDelaySeconds(attempts, config, retryAfter, () => random);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(Math.max(1, retryAfter ?? 0));
          expect(delay).toBeLessThanOrEqual(Math.max(config.retryMaxSeconds, retryAfter ?? 0));
        },
      ),
    );
  });

  it('an event that never gets through is attempted only within its max age, then dead-lettered', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 60, max: 3600 }),
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 1200 }),
        fc.option(fc.integer({ min: 1, max: 900 }), { nil: undefined }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        async (maxAgeSeconds, retryMinSeconds, retrySpan, retryAfterSeconds, random) => {
          const unavailable: PartnerCenterClient = {
            getReferral: async () => {
              throw new AdapterError('upstream_unavailable', 'down', {
                ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
              });
            },
            putReferral: async () => {
              throw new Error('no write expected');
            },
            writeReferral: async () => {
              throw new Error('no write expected');
            },
            close: async () => {},
          };
          const app = testApp(unavailable, { settings: ONE_TRY });
          const { queue } = withDelivery(app, {
            maxAgeSeconds,
            retryMinSeconds,
            retryMaxSeconds: retryMinSeconds + retrySpan,
          });
          const { eventId } = await accept(app, event({ eventId: 'evt-never', status: 'Active' }));
          const acceptedAt = Date.parse(recordOf(app, eventId).acceptedAt);
          const clock = clockAt(recordOf(app, eventId), 0, random);
          for (let attempt = 1; attempt <= 10_000; attempt++) {
            await work(app, eventId, clock);
            const record = recordOf(app, eventId);
            expect(record.attempts).toBe(attempt);
            expect(Date.parse(record.lastAttemptAt ?? '')).toBeLessThan(acceptedAt + maxAgeSeconds * 1000);
            if (record.state === 'dead_lettered') return;
            expect(record.state).toBe('retrying');
            const delay = queue.sent.at(-1)?.delaySeconds ?? 0;
            expect(delay).toBeGreaterThanOrEqual(retryAfterSeconds ?? 1);
            clock.advance(delay * 1000);
          }
          throw new Error('never dead-lettered');
        },
      ),
      { numRuns: 30 },
    );
  });
});
