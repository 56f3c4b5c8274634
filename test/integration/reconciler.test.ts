/**
 * The reconciler (docs/async-delivery.md#reconciler) through the local host: a `queued` record accepted
 * 20 minutes ago whose message was lost (written straight to the app's table, no message sent) stays queued
 * until the timer runs; run now through the host's admin API, it re-sends the message and the worker applies
 * the event.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeReferral } from '../../dev/sandbox/seed.js';
import { parseUpdateEvent } from '../../shared/contract/update-event.js';
import { createTableDeliveryStore } from '../../shared/delivery/table-store.js';
import { eventFingerprint } from '../../shared/idempotency/store.js';
import { type AsyncHost, type AsyncStack, messagesIn, startAsyncStack, until } from '../support/async.js';

let stack: AsyncStack;
let app: AsyncHost;

beforeAll(async () => {
  stack = await startAsyncStack();
  app = stack.hosts[0] as AsyncHost;
}, 30_000);

afterAll(async () => {
  await stack?.stop();
});

it('a queued record without a message, accepted 20 minutes ago: the reconciler re-sends it, the worker applies it', async () => {
  const referral = makeReferral({ status: 'Active', substatus: 'Accepted' });
  stack.sandbox.putReferral(referral);
  const referralId = referral.id;
  const eventId = randomUUID();
  const event = { ...parseUpdateEvent({ referralId, eventId, dealValue: 4321 }), eventId };
  const store = createTableDeliveryStore({
    store: 'table',
    tableName: stack.names.table,
    connection: { connectionString: String(process.env.AzureWebJobsStorage) },
    retentionSeconds: 3600,
    waitMs: 0,
  });
  const acceptedAt = new Date(Date.now() - 20 * 60_000).toISOString();
  await store.create({
    eventId,
    referralId,
    fingerprint: eventFingerprint(event),
    token: randomBytes(18).toString('base64url'),
    acceptedAt,
    orderedAt: acceptedAt,
    event: { referralId, eventId, occurredAt: event.occurredAt, intent: event.intent },
  });
  expect(await messagesIn(stack.names.queue)).toBe(0);
  // Nothing moves it on its own.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect((await app.getEvent(eventId)).body.state).toBe('queued');

  const run = await fetch(`${app.hostUrl}/admin/functions/referral-update-reconciler`, { method: 'POST', body: '{}' });
  expect(run.status).toBe(202);

  const done = await until('the event succeeds', async () => {
    const answer = await app.getEvent(eventId);
    return answer.body.state === 'succeeded' ? answer : undefined;
  });
  expect(done.status).toBe(200);
  const puts = stack.sandbox.requests.filter((r) => r.referralId === referralId && r.method === 'PUT');
  expect(puts).toHaveLength(1);
  const output = app.host.output();
  const lines = output.split('\n').filter((line) => line.includes('"event":"referral-update-reconciler"'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/"logCode":"DELIVERY_RECONCILED".*"resent":1/);
  expect(lines[0]).not.toContain(referralId);

  // Once final, a second run sends nothing.
  await fetch(`${app.hostUrl}/admin/functions/referral-update-reconciler`, { method: 'POST', body: '{}' });
  await app.host.waitFor(/(DELIVERY_RECONCILED.*){2}/s);
  expect(app.host.output()).toMatch(/"logCode":"DELIVERY_RECONCILED","examined":0,"resent":0/);
}, 60_000);
