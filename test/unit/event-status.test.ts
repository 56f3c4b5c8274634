/**
 * The status URL (shared/use-cases/event-status.ts, docs/async-delivery.md#status-url), in process: each state of
 * an accepted event, and the 404 that reveals nothing.
 */
import { describe, expect, it } from 'vitest';
import { pendingStatusSchema } from '../../shared/contract/async.js';
import { problemSchema, updateResultSchema } from '../../shared/contract/responses.js';
import type { DeliveryChanges, DeliveryRecord } from '../../shared/delivery/store.js';
import { parseStatusId, statusIdOf } from '../../shared/use-cases/async-delivery.js';
import { retryAfterSeconds } from '../../shared/use-cases/event-status.js';
import { ScriptedPartnerCenter } from '../support/scripted-partner-center.js';
import { deliver, poll, REFERRAL_ID, type TestApp, testApp, withDelivery } from '../support/use-cases.js';

async function accepted(eventId = 'evt-status') {
  const app = testApp(new ScriptedPartnerCenter([]));
  const { store, config } = withDelivery(app, { pollSeconds: 9 });
  const answer = await deliver(app, {
    body: { referralId: REFERRAL_ID, status: 'Active', eventId },
    headers: { Prefer: 'respond-async' },
  });
  const statusUrl = String(answer.json.statusUrl);
  const set = async (changes: DeliveryChanges) => {
    const [record] = store.records();
    if (!record) throw new Error('no record');
    await store.update(record, changes);
  };
  return { app, store, config, statusUrl, set };
}

const expectNotFound = async (app: TestApp, url: string) => {
  const answer = await poll(app, url);
  expect(answer.status).toBe(404);
  expect(problemSchema.parse(answer.json)).toMatchObject({ code: 'event_not_found', retryable: false });
  expect(Object.keys(answer.json).sort()).toEqual(['code', 'detail', 'retryable', 'status', 'title', 'type']);
};

describe('pending', () => {
  it.each(['queued', 'running'] as const)(
    '%s: 202, the same Location, Retry-After ASYNC_POLL_SECONDS, the pending body',
    async (state) => {
      const { app, statusUrl, set } = await accepted();
      if (state === 'running') await set({ state, attempts: 1, lastAttemptAt: new Date().toISOString() });
      const answer = await poll(app, statusUrl);
      expect(answer.status).toBe(202);
      expect(answer.headers.Location).toBe(statusUrl);
      expect(answer.headers['Retry-After']).toBe('9');
      expect(pendingStatusSchema.parse(answer.json)).toEqual({
        referralId: REFERRAL_ID,
        eventId: 'evt-status',
        state,
        attempts: state === 'running' ? 1 : 0,
        nextAttemptAt: null,
        lastError: null,
      });
    },
  );

  it('retrying: Retry-After is the time until the next attempt, 1 to 60 seconds', async () => {
    const { app, statusUrl, set } = await accepted();
    const now = Date.parse('2030-01-01T00:00:00Z');
    const next = new Date(now + 42_500).toISOString();
    await set({
      state: 'retrying',
      attempts: 2,
      nextAttemptAt: next,
      lastError: { code: 'upstream_unavailable', status: 503 },
    });
    const answer = await poll(app, statusUrl, { now: () => now });
    expect(answer.status).toBe(202);
    expect(answer.headers['Retry-After']).toBe('43');
    expect(pendingStatusSchema.parse(answer.json)).toMatchObject({
      state: 'retrying',
      attempts: 2,
      nextAttemptAt: next,
      lastError: { code: 'upstream_unavailable', status: 503 },
    });
  });

  it('Retry-After of a retrying event is clamped to 1..60; of the others it is ASYNC_POLL_SECONDS', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const at = (ms: number) => new Date(now + ms).toISOString();
    const poll5 = { pollSeconds: 5 };
    expect(retryAfterSeconds({ state: 'retrying', nextAttemptAt: at(-5000) }, poll5, now)).toBe(1);
    expect(retryAfterSeconds({ state: 'retrying', nextAttemptAt: at(3_600_000) }, poll5, now)).toBe(60);
    expect(retryAfterSeconds({ state: 'queued', nextAttemptAt: null }, poll5, now)).toBe(5);
  });
});

describe('done', () => {
  const result = {
    referralId: REFERRAL_ID,
    eventId: 'evt-status',
    outcome: 'updated',
    status: 'Active',
    substatus: 'Accepted',
    eTag: '"e2"',
    changes: [{ path: '/status', from: 'New', to: 'Active' }],
  };

  it('succeeded: the stored 200 with state succeeded, and the poll’s own correlation id', async () => {
    const { app, statusUrl, set } = await accepted();
    await set({
      state: 'succeeded',
      attempts: 1,
      event: null,
      answer: {
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify(result),
      },
    });
    const answer = await poll(app, statusUrl, {
      headers: { 'MS-CorrelationId': '00000000-0000-4000-8000-0000000000aa' },
    });
    expect(answer.status).toBe(200);
    expect(updateResultSchema.parse(answer.json)).toEqual({ ...result, state: 'succeeded' });
    expect(answer.headers['MS-CorrelationId']).toBe('00000000-0000-4000-8000-0000000000aa');
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('failed: the stored problem with its status and state failed', async () => {
    const { app, statusUrl, set } = await accepted();
    const stored = {
      type: 'urn:partner-referral-webhook:error:referral_closed',
      title: 'The referral is closed',
      status: 422,
      detail: 'closed',
      code: 'referral_closed',
      retryable: false,
      referralId: REFERRAL_ID,
    };
    await set({
      state: 'failed',
      attempts: 1,
      event: null,
      answer: {
        status: 422,
        headers: { 'content-type': 'application/problem+json; charset=utf-8' },
        body: JSON.stringify(stored),
      },
    });
    const answer = await poll(app, statusUrl);
    expect(answer.status).toBe(422);
    expect(problemSchema.parse(answer.json)).toEqual({ ...stored, state: 'failed' });
    expect(answer.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  });

  it('dead_lettered: 424 with the attempts, the times, the last error and the replay', async () => {
    const { app, statusUrl, set, store } = await accepted();
    await set({
      state: 'dead_lettered',
      attempts: 7,
      lastAttemptAt: '2030-01-01T00:00:00.000Z',
      deadLetteredAt: '2030-01-01T00:00:01.000Z',
      lastError: { code: 'upstream_timeout', status: 504 },
    });
    const answer = await poll(app, statusUrl);
    expect(answer.status).toBe(424);
    const record = store.records()[0] as DeliveryRecord;
    expect(problemSchema.parse(answer.json)).toMatchObject({
      code: 'dead_lettered',
      retryable: false,
      state: 'dead_lettered',
      eventId: 'evt-status',
      referralId: REFERRAL_ID,
      attempts: 7,
      acceptedAt: record.acceptedAt,
      lastAttemptAt: '2030-01-01T00:00:00.000Z',
      deadLetteredAt: '2030-01-01T00:00:01.000Z',
      lastError: { code: 'upstream_timeout', status: 504 },
      replay: { method: 'POST', path: '/api/referral-updates/events/evt-status/replay' },
    });
    expect(String(answer.json.detail)).toContain('replay');
  });
});

describe('404, nothing revealed', () => {
  it('a wrong token, an unknown event, a malformed id: the same 404 event_not_found', async () => {
    const { app, statusUrl, store } = await accepted();
    const record = store.records()[0] as DeliveryRecord;
    const base = statusUrl.slice(0, statusUrl.lastIndexOf('/') + 1);
    const flipped = record.token.startsWith('A') ? `B${record.token.slice(1)}` : `A${record.token.slice(1)}`;
    await expectNotFound(app, `${base}${statusIdOf({ eventId: record.eventId, token: flipped })}`);
    await expectNotFound(app, `${base}${statusIdOf({ eventId: record.eventId, token: `${record.token}x` })}`);
    await expectNotFound(app, `${base}${statusIdOf({ eventId: 'evt-other', token: record.token })}`);
    await expectNotFound(app, `${base}no-dot-here`);
    await expectNotFound(app, `${base}a.b.c`);
    await expectNotFound(app, `${base}${Buffer.from('evt-status').toString('base64')}=.${record.token}`);
    expect((await poll(app, statusUrl)).status).toBe(202);
  });

  it('without asynchronous delivery (memory store): 404', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    await expectNotFound(
      app,
      `http://localhost:7071/api/referral-updates/status/${statusIdOf({ eventId: 'e', token: 't' })}`,
    );
  });

  it('status ids round-trip any event id', () => {
    for (const eventId of ['evt-1', 'ünïcödé/with spaces?&', '🙂'.repeat(10)]) {
      expect(parseStatusId(statusIdOf({ eventId, token: 'tok_en-1' }))).toEqual({ eventId, token: 'tok_en-1' });
    }
  });
});
