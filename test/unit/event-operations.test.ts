/**
 * Operations on accepted events (shared/use-cases/event-operations.ts, docs/async-delivery.md#operations), in
 * process: list by state and referral, read one, replay a dead-lettered one. No customer values in any answer.
 */
import { describe, expect, it } from 'vitest';
import { acceptedSchema, deliveryListSchema, deliverySummarySchema } from '../../shared/contract/async.js';
import { problemSchema } from '../../shared/contract/responses.js';
import type { DeliveryState } from '../../shared/delivery/store.js';
import { getEvent, listEvents, type OperationsRequest, replayEvent } from '../../shared/use-cases/event-operations.js';
import { GET, PUT, ScriptedPartnerCenter } from '../support/scripted-partner-center.js';
import { deliver, EVENT_URL, poll, REFERRAL_ID, referral, testApp, withDelivery, work } from '../support/use-cases.js';

const SECRET_NOTE = 'Customer confides a secret';

function request(
  query: Record<string, string> = {},
  url = 'https://ops.example.net/api/referral-updates/events',
): OperationsRequest {
  return { url, headers: new Headers(), query: new URLSearchParams(query) };
}

const parsed = (response: { body: string }) => JSON.parse(response.body) as Record<string, unknown>;

async function setUp(states: Array<[string, DeliveryState, string?]>) {
  const app = testApp(new ScriptedPartnerCenter([]));
  const delivery = withDelivery(app);
  for (const [eventId, state, referralId = REFERRAL_ID] of states) {
    const answer = await deliver(app, {
      body: { referralId, eventId, status: 'Active', notes: SECRET_NOTE },
      headers: { Prefer: 'respond-async' },
    });
    expect(answer.status).toBe(202);
    const record = delivery.store.records().find((r) => r.eventId === eventId);
    if (record && state !== 'queued') {
      await delivery.store.update(record, {
        state,
        attempts: 3,
        lastError: { code: 'upstream_unavailable', status: 503 },
        ...(state === 'dead_lettered' ? { deadLetteredAt: '2030-01-01T00:00:00.000Z' } : {}),
      });
    }
  }
  return { app, ...delivery };
}

describe('list', () => {
  it('by state (dead-lettered and dead_lettered alike) and by referral; items without customer values', async () => {
    const { app } = await setUp([
      ['evt-1', 'dead_lettered'],
      ['evt-2', 'queued'],
      ['evt-3', 'dead_lettered', 'ref-0002'],
      ['evt-4', 'succeeded'],
    ]);
    for (const state of ['dead-lettered', 'dead_lettered']) {
      const answer = await listEvents(request({ state }), app);
      expect(answer.status).toBe(200);
      const list = deliveryListSchema.parse(parsed(answer));
      expect(list.items.map((item) => item.eventId)).toEqual(['evt-1', 'evt-3']);
      expect(list.items[0]).toMatchObject({
        state: 'dead_lettered',
        attempts: 3,
        lastError: { code: 'upstream_unavailable', status: 503 },
      });
      expect(answer.body).not.toContain(SECRET_NOTE);
    }
    const byReferral = deliveryListSchema.parse(
      parsed(await listEvents(request({ state: 'dead-lettered', referralId: 'ref-0002' }), app)),
    );
    expect(byReferral.items.map((item) => item.eventId)).toEqual(['evt-3']);
    const all = deliveryListSchema.parse(parsed(await listEvents(request(), app)));
    expect(all.items).toHaveLength(4);
  });

  it('pages with top and continuationToken', async () => {
    const { app } = await setUp([
      ['evt-1', 'queued'],
      ['evt-2', 'queued'],
      ['evt-3', 'queued'],
    ]);
    const first = deliveryListSchema.parse(parsed(await listEvents(request({ top: '2' }), app)));
    expect(first.items.map((item) => item.eventId)).toEqual(['evt-1', 'evt-2']);
    expect(first.continuationToken).toBeDefined();
    const second = deliveryListSchema.parse(
      parsed(await listEvents(request({ top: '2', continuationToken: first.continuationToken ?? '' }), app)),
    );
    expect(second.items.map((item) => item.eventId)).toEqual(['evt-3']);
    expect(second.continuationToken).toBeUndefined();
  });

  it.each([
    [{ state: 'lost' }, ['state']],
    [{ top: '0' }, ['top']],
    [{ top: '201' }, ['top']],
    [{ top: 'ten' }, ['top']],
    [{ state: 'dead lettered', top: '-1' }, ['state', 'top']],
  ])('%o: 400 invalid_event naming %o', async (query, fields) => {
    const { app } = await setUp([]);
    const answer = await listEvents(request(query), app);
    expect(answer.status).toBe(400);
    const problem = problemSchema.parse(parsed(answer));
    expect(problem.code).toBe('invalid_event');
    expect(problem.errors?.map((error) => error.field)).toEqual(fields);
  });

  it('top defaults to 50 and goes up to 200', async () => {
    const { app, store } = await setUp([]);
    const seen: number[] = [];
    const list = store.list.bind(store);
    store.list = (filter, options) => {
      seen.push(filter.top);
      return list(filter, options);
    };
    await listEvents(request(), app);
    await listEvents(request({ top: '200' }), app);
    expect(seen).toEqual([50, 200]);
  });

  it('without asynchronous delivery: 503 async_unavailable', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    const answer = await listEvents(request(), app);
    expect(answer.status).toBe(503);
    expect(parsed(answer).code).toBe('async_unavailable');
  });
});

describe('get one', () => {
  it('the summary of the event, or 404 event_not_found', async () => {
    const { app } = await setUp([['evt-1', 'retrying']]);
    const answer = await getEvent('evt-1', request(), app);
    expect(answer.status).toBe(200);
    expect(deliverySummarySchema.parse(parsed(answer))).toMatchObject({
      eventId: 'evt-1',
      state: 'retrying',
      attempts: 3,
    });
    expect(answer.body).not.toContain(SECRET_NOTE);
    const missing = await getEvent('evt-none', request(), app);
    expect(missing.status).toBe(404);
    expect(problemSchema.parse(parsed(missing)).code).toBe('event_not_found');
  });
});

describe('replay', () => {
  it('a dead-lettered event: queued again (attempts kept, a new acceptedAt, orderedAt kept), its message sent, 202 with the status URL; the worker then applies it once', async () => {
    const { app, store, queue } = await setUp([['evt-dead', 'dead_lettered']]);
    const before = store.records()[0];
    const replayedAt = Date.parse('2031-06-01T00:00:00Z');
    const answer = await replayEvent('evt-dead', request({}, `${EVENT_URL}/events/evt-dead/replay`), app, {
      now: () => replayedAt,
    });

    expect(answer.status).toBe(202);
    const body = acceptedSchema.parse(parsed(answer));
    expect(answer.headers.Location).toBe(body.statusUrl);
    expect(body.statusUrl).toMatch(/^http:\/\/localhost:7071\/api\/referral-updates\/status\//);
    expect(answer.headers['Retry-After']).toBe('5');
    const record = store.records()[0];
    expect(record).toMatchObject({
      state: 'queued',
      attempts: 3,
      acceptedAt: '2031-06-01T00:00:00.000Z',
      nextAttemptAt: null,
      deadLetteredAt: null,
    });
    expect(record?.orderedAt).toBe(before?.orderedAt);
    expect(queue.sent.at(-1)).toEqual({ message: { v: 1, eventId: 'evt-dead' }, delaySeconds: 0 });

    const pc = new ScriptedPartnerCenter([GET.ok(referral()), PUT.ok()]);
    app.runtimeValue.client = pc;
    await work(app, 'evt-dead', { now: () => replayedAt + 1000, random: () => 0 });
    expect(store.records()[0]).toMatchObject({ state: 'succeeded', attempts: 4 });
    expect((await poll(app, body.statusUrl)).status).toBe(200);
    expect(pc.sequence).toBe('GET PUT');
  });

  it.each(['queued', 'running', 'retrying', 'succeeded', 'failed'] as const)(
    'a %s event: 409 replay_not_allowed naming its state',
    async (state) => {
      const { app, queue } = await setUp([['evt-1', state]]);
      const sent = queue.sent.length;
      const answer = await replayEvent('evt-1', request(), app);
      expect(answer.status).toBe(409);
      const problem = problemSchema.parse(parsed(answer));
      expect(problem).toMatchObject({ code: 'replay_not_allowed', retryable: false, state });
      expect(problem.detail).toContain(state);
      expect(queue.sent).toHaveLength(sent);
    },
  );

  it('an unknown event: 404', async () => {
    const { app } = await setUp([]);
    const answer = await replayEvent('evt-none', request(), app);
    expect(answer.status).toBe(404);
  });

  it('the queue refuses the message: 503 delivery_unavailable, the event stays dead_lettered', async () => {
    const { app, store, queue } = await setUp([['evt-dead', 'dead_lettered']]);
    queue.send = async () => {
      throw new Error('queue down');
    };
    const answer = await replayEvent('evt-dead', request(), app);
    expect(answer.status).toBe(503);
    expect(parsed(answer).code).toBe('delivery_unavailable');
    expect(store.records()[0]).toMatchObject({ state: 'dead_lettered', deadLetteredAt: '2030-01-01T00:00:00.000Z' });
  });
});
