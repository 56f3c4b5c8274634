/**
 * Accepting an event for asynchronous delivery (shared/use-cases/accept-event.ts, docs/async-delivery.md), in
 * process: the pipeline on the scripted Partner Center, the memory deliveries store and queue.
 */
import { describe, expect, it } from 'vitest';
import { acceptedSchema } from '../../shared/contract/async.js';
import { problemSchema } from '../../shared/contract/responses.js';
import { createMemoryDeliveryStore, createMemoryEventQueue } from '../../shared/delivery/store.js';
import { parseStatusId } from '../../shared/use-cases/async-delivery.js';
import { GET, PUT, ScriptedPartnerCenter } from '../support/scripted-partner-center.js';
import { CORRELATION_ID, deliver, REFERRAL_ID, referral, testApp, withDelivery } from '../support/use-cases.js';

const event = (fields: Record<string, unknown> = {}) => ({ referralId: REFERRAL_ID, status: 'Active', ...fields });
const ASYNC = { Prefer: 'respond-async' };

describe('202 Accepted', () => {
  it('stores and queues the event, answers 202 with an absolute Location under /api, Retry-After, MS-CorrelationId, Preference-Applied, and the accepted body; nothing upstream', async () => {
    const pc = new ScriptedPartnerCenter([]);
    const app = testApp(pc);
    const { store, queue } = withDelivery(app, { pollSeconds: 7 });

    const accepted = await deliver(app, {
      body: event({ eventId: 'evt-a1', dealValue: 10 }),
      headers: { ...ASYNC, 'MS-CorrelationId': CORRELATION_ID },
      url: 'https://adapter.example.net/api/referral-updates?code=secret-key',
    });

    expect(accepted.status).toBe(202);
    const body = acceptedSchema.parse(accepted.json);
    expect(body).toMatchObject({ referralId: REFERRAL_ID, eventId: 'evt-a1', state: 'queued' });
    expect(accepted.headers.Location).toBe(body.statusUrl);
    expect(body.statusUrl).toMatch(
      /^https:\/\/adapter\.example\.net\/api\/referral-updates\/status\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/,
    );
    expect(body.statusUrl).not.toContain('code=');
    expect(accepted.headers['Retry-After']).toBe('7');
    expect(accepted.headers['Preference-Applied']).toBe('respond-async');
    expect(accepted.headers['MS-CorrelationId']).toBe(CORRELATION_ID);
    expect(pc.calls).toHaveLength(0);

    const [record] = store.records();
    expect(record).toMatchObject({ eventId: 'evt-a1', referralId: REFERRAL_ID, state: 'queued', attempts: 0 });
    expect(record?.event).toEqual({
      referralId: REFERRAL_ID,
      eventId: 'evt-a1',
      occurredAt: undefined,
      intent: { status: 'Active', substatus: 'Accepted', dealValue: 10 },
    });
    expect(record?.orderedAt).toBe(record?.acceptedAt);
    const statusId = decodeURIComponent(body.statusUrl.split('/').pop() ?? '');
    expect(parseStatusId(statusId)).toEqual({ eventId: 'evt-a1', token: record?.token });
    expect(queue.sent).toEqual([{ message: { v: 1, eventId: 'evt-a1' }, delaySeconds: 0 }]);
    const line = JSON.parse(app.lines.at(-1) ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({ status: 202, outcome: 'accepted', eventId: 'evt-a1', attempts: 0 });
  });

  it.each([
    ['Prefer: respond-async', { headers: { Prefer: 'wait=10, Respond-Async' } }],
    ['?async=true', { query: { async: 'true' } }],
    ['DEFAULT_DELIVERY=async', { default: 'async' as const }],
  ])('is asked for with %s', async (_name, how) => {
    const app = testApp(new ScriptedPartnerCenter([]));
    withDelivery(app, 'default' in how ? { default: how.default } : {});
    const accepted = await deliver(app, {
      body: event({ eventId: 'evt-ask' }),
      ...('headers' in how ? { headers: how.headers } : {}),
      ...('query' in how ? { query: how.query } : {}),
    });
    expect(accepted.status).toBe(202);
  });

  it('?async=false wins over DEFAULT_DELIVERY=async: the synchronous answer', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(referral()), PUT.ok()]);
    const app = testApp(pc);
    const { store } = withDelivery(app, { default: 'async' });
    const answered = await deliver(app, { body: event({ eventId: 'evt-sync' }), query: { async: 'false' } });
    expect(answered.status).toBe(200);
    expect(store.records()).toHaveLength(0);
  });

  it('gives an event without an id a UUID, returned in the body and the status URL', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { store } = withDelivery(app);
    const accepted = await deliver(app, { body: event(), headers: ASYNC });
    expect(accepted.status).toBe(202);
    expect(accepted.json.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(store.records()[0]?.eventId).toBe(accepted.json.eventId);
  });
});

describe('redelivery of the POST', () => {
  it('the same event id with the same body: 202 with the same status URL, whatever the state; one record', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { store, queue } = withDelivery(app);
    const delivery = { body: event({ eventId: 'evt-again', dealValue: 5 }), headers: ASYNC };

    const first = await deliver(app, delivery);
    const again = await deliver(app, delivery);
    expect(again.status).toBe(202);
    expect(again.body).toBe(first.body);
    expect(again.headers.Location).toBe(first.headers.Location);
    // Still queued with no attempt: the message is sent again (heals a first send whose answer was lost).
    expect(queue.sent).toHaveLength(2);

    const [record] = store.records();
    if (!record) throw new Error('no record');
    await store.update(record, { state: 'succeeded', attempts: 1 });
    const late = await deliver(app, delivery);
    expect(late.status).toBe(202);
    expect(late.headers.Location).toBe(first.headers.Location);
    expect(queue.sent).toHaveLength(2);
    expect(store.records()).toHaveLength(1);
  });

  it('the same event id with another body: 422 idempotency_key_reused, nothing queued', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { queue } = withDelivery(app);
    await deliver(app, { body: event({ eventId: 'evt-reused', dealValue: 1 }), headers: ASYNC });
    const reused = await deliver(app, { body: event({ eventId: 'evt-reused', dealValue: 2 }), headers: ASYNC });
    expect(reused.status).toBe(422);
    expect(problemSchema.parse(reused.json).code).toBe('idempotency_key_reused');
    expect(queue.sent).toHaveLength(1);
  });
});

describe('nothing half-accepted', () => {
  it('the queue refuses the message: 503 delivery_unavailable (retryable, Retry-After) and the record is removed', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const store = createMemoryDeliveryStore();
    const queue = createMemoryEventQueue();
    queue.send = async () => {
      throw new Error('queue down');
    };
    app.runtimeValue.delivery = { store, queue, config: withDelivery(app).config };
    const refused = await deliver(app, { body: event({ eventId: 'evt-down' }), headers: ASYNC });
    expect(refused.status).toBe(503);
    expect(problemSchema.parse(refused.json)).toMatchObject({ code: 'delivery_unavailable', retryable: true });
    expect(refused.headers['retry-after']).toBe('2');
    expect(store.records()).toHaveLength(0);
  });

  it('a redelivery that heals the record while the first acceptance’s send fails: the first cannot undo it', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { store, queue } = withDelivery(app);
    const send = queue.send.bind(queue);
    let second: Awaited<ReturnType<typeof deliver>> | undefined;
    let calls = 0;
    queue.send = async (message, options) => {
      calls++;
      if (calls > 1) return send(message, options);
      // The first acceptance's send is slow and then fails; meanwhile the caller sends the event again.
      second = await deliver(app, { body: event({ eventId: 'evt-heal' }), headers: ASYNC });
      throw new Error('queue down');
    };
    const first = await deliver(app, { body: event({ eventId: 'evt-heal' }), headers: ASYNC });
    expect(first.status).toBe(503);
    expect(second?.status).toBe(202);
    // The record the second answer's status URL points at is still there, with its message.
    expect(store.records()).toEqual([expect.objectContaining({ eventId: 'evt-heal', state: 'queued' })]);
    expect(queue.sent).toEqual([{ message: { v: 1, eventId: 'evt-heal' }, delaySeconds: 0 }]);
  });

  it('the store fails: 503 delivery_unavailable, nothing queued', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { store, queue } = withDelivery(app);
    store.create = async () => {
      throw new Error('table down');
    };
    const refused = await deliver(app, { body: event({ eventId: 'evt-table' }), headers: ASYNC });
    expect(refused.status).toBe(503);
    expect(refused.json.code).toBe('delivery_unavailable');
    expect(queue.sent).toHaveLength(0);
  });
});

describe('decided before accepting, or not asynchronous at all', () => {
  it('?async=bogus: 400 invalid_event naming async, with the body’s own field errors', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { store } = withDelivery(app);
    const refused = await deliver(app, {
      body: { referralId: REFERRAL_ID, substaus: 'Won' },
      query: { async: 'bogus' },
    });
    expect(refused.status).toBe(400);
    const problem = problemSchema.parse(refused.json);
    expect(problem.code).toBe('invalid_event');
    const fields = problem.errors?.map((error) => error.field);
    expect(fields).toContain('async');
    expect(fields).toContain('substaus');
    expect(store.records()).toHaveLength(0);
  });

  it('?async=bogus alone: 400 naming async only', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    withDelivery(app);
    const refused = await deliver(app, { body: event(), query: { async: 'maybe' } });
    expect(refused.status).toBe(400);
    expect(refused.json.errors).toEqual([
      {
        pointer: '',
        field: 'async',
        code: 'invalid_query',
        message: 'The async query parameter must be true or false.',
      },
    ]);
  });

  it('an invalid event asked asynchronously is still a 400, nothing stored', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const { store } = withDelivery(app);
    const refused = await deliver(app, { body: { referralId: REFERRAL_ID }, headers: ASYNC });
    expect(refused.status).toBe(400);
    expect(store.records()).toHaveLength(0);
  });

  it('a dry run is always answered synchronously', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(referral())]);
    const app = testApp(pc);
    const { store } = withDelivery(app, { default: 'async' });
    const dry = await deliver(app, { body: event({ dryRun: true }), headers: ASYNC, query: { async: 'true' } });
    expect(dry.status).toBe(200);
    expect(dry.json.outcome).toBe('dry-run');
    expect(store.records()).toHaveLength(0);
  });

  it('on the memory store (no delivery configured): 503 async_unavailable, not retryable', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const refused = await deliver(app, { body: event({ eventId: 'evt-memory' }), headers: ASYNC });
    expect(refused.status).toBe(503);
    expect(problemSchema.parse(refused.json)).toMatchObject({ code: 'async_unavailable', retryable: false });
  });
});
