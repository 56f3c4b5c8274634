/**
 * Standard Webhooks signatures, the body size limit, idempotency retention and the in-progress answer,
 * each with the settings that turn them on, through the local host.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { signWebhook } from '../../shared/http/webhook-signature.js';
import { requestsOf, useStack } from '../support/stack.js';

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;
const OLD_SECRET = secret();
const NEW_SECRET = secret();
const now = () => Math.floor(Date.now() / 1000);

describe('signed webhooks (WEBHOOK_SECRETS set)', () => {
  const stack = useStack({ WEBHOOK_SECRETS: `${OLD_SECRET} ${NEW_SECRET}`, MAX_BODY_BYTES: '2048' });

  const signed = (body: string, key: string, id = `msg_${randomBytes(6).toString('hex')}`, timestamp = now()) => ({
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(key, id, timestamp, body),
  });

  it('accepts a body signed with either secret (rotation), in any position of the signature list', async () => {
    for (const key of [OLD_SECRET, NEW_SECRET]) {
      const body = JSON.stringify({ referralId: SEED_IDS.activeAccepted, notes: `signed with ${key.slice(-4)}` });
      const headers = signed(body, key);
      headers['webhook-signature'] = `v1,${randomBytes(32).toString('base64')} ${headers['webhook-signature']}`;
      const answer = await stack.post(body, { headers });
      expect(answer.status, answer.text).toBe(200);
    }
  });

  it.each([
    ['no signature headers', (_body: string) => ({})],
    ['a wrong secret', (body: string) => signed(body, secret())],
    ['a timestamp 6 minutes old', (body: string) => signed(body, NEW_SECRET, 'msg_old', now() - 360)],
    ['a body changed after signing', (body: string) => signed(body.replace('x', 'y'), NEW_SECRET)],
    [
      'a v1a (asymmetric) entry only',
      (body: string) => ({ ...signed(body, NEW_SECRET), 'webhook-signature': 'v1a,abc' }),
    ],
  ])('refuses %s with 401 invalid_signature before anything else', async (_what, headersFor) => {
    const body = JSON.stringify({ referralId: SEED_IDS.newPending, notes: 'x' });
    const before = stack.sandbox.requests.length;
    const answer = await stack.post(body, { headers: headersFor(body) as Record<string, string> });
    expect(answer.status).toBe(401);
    expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(answer.body).toMatchObject({ code: 'invalid_signature', retryable: false });
    expect(stack.sandbox.requests.length).toBe(before);
  });

  it('GET /api/health says signatures are enforced with 2 secrets, and never shows them', async () => {
    const response = await fetch(`${stack.hostUrl}/api/health`);
    const text = await response.text();
    expect(JSON.parse(text)).toMatchObject({ status: 'ok', signatures: { enforced: true, secrets: 2 } });
    for (const key of [OLD_SECRET, NEW_SECRET]) {
      expect(text).not.toContain(key.slice('whsec_'.length, 20));
    }
  });

  it('a signed delivery replayed with ?dryRun=true is a 400 and does not burn its event id', async () => {
    const body = JSON.stringify({ referralId: SEED_IDS.activeAccepted, notes: `replayed ${Date.now()}` });
    const headers = signed(body, NEW_SECRET);
    const before = stack.sandbox.requests.length;
    const replayed = await stack.post(body, { headers, query: '?dryRun=true' });
    expect(replayed.status).toBe(400);
    expect(replayed.body).toMatchObject({
      errors: [expect.objectContaining({ field: 'dryRun', code: 'unsigned_query' })],
    });
    expect(stack.sandbox.requests.length).toBe(before);
    const genuine = await stack.post(body, { headers });
    expect(genuine.status, genuine.text).toBe(200);
    expect(genuine.body.outcome).toBe('updated');
  });

  it('checks the signature before parsing: an unsigned invalid body is 401, not 400', async () => {
    const answer = await stack.post('{not json');
    expect(answer.status).toBe(401);
  });

  it('refuses a body over MAX_BODY_BYTES with 413, before the signature and with no upstream call', async () => {
    const body = JSON.stringify({ referralId: SEED_IDS.newPending, notes: 'n'.repeat(4000) });
    const before = stack.sandbox.requests.length;
    const answer = await stack.post(body, { headers: signed(body, NEW_SECRET) });
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({ code: 'payload_too_large' });
    expect(stack.sandbox.requests.length).toBe(before);
  });
});

describe('idempotency retention and waiting', () => {
  const stack = useStack({ IDEMPOTENCY_RETENTION_SECONDS: '1', IDEMPOTENCY_WAIT_MS: '0' });

  it('forgets an event after the retention: a later redelivery runs again (and finds nothing to change)', async () => {
    const event = { referralId: SEED_IDS.newPending, status: 'Active' };
    const headers = { 'webhook-id': `evt-retention-${Date.now()}` };
    expect((await stack.post(event, { headers })).body.outcome).toBe('updated');
    expect((await stack.post(event, { headers })).headers.get('idempotent-replayed')).toBe('true');
    await sleep(1100);
    const later = await stack.post(event, { headers });
    expect(later.status).toBe(200);
    expect(later.body.outcome).toBe('unchanged');
    expect(later.headers.get('idempotent-replayed')).toBeNull();
  });

  it('a copy arriving while the first still runs gets 409 in_progress with Retry-After when it may not wait', async () => {
    stack.sandbox.reset();
    stack.sandbox.injectFault({ method: 'GET', action: { type: 'delay', ms: 600 } });
    const headers = { 'webhook-id': `evt-busy-${Date.now()}` };
    const event = { referralId: SEED_IDS.newReceived, notes: 'busy' };
    const first = stack.post(event, { headers });
    await sleep(200);
    const second = await stack.post(event, { headers });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ code: 'in_progress', retryable: true });
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await first).status).toBe(200);
    expect(requestsOf(stack.sandbox, 'PUT')).toHaveLength(1);
  });
});
