/**
 * Nothing applied twice: event ids, stored answers (Azure Table Storage on Azurite), ordering by
 * occurredAt, and one update at a time per referral. Through the local host, against the sandbox.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startIdentityEmulator } from '../../dev/emulators/identity.js';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { startPartnerCenterSandbox } from '../../dev/sandbox/server.js';
import { type Answer, requestsOf, startHostProcess, useStack } from '../support/stack.js';

const stack = useStack({}, { resetSandbox: true });

let n = 0;
const newId = () => `evt-${Date.now()}-${++n}`;

describe('event ids', () => {
  it('a redelivered event gets the stored answer, byte for byte, with no upstream call', async () => {
    const id = newId();
    const event = { referralId: SEED_IDS.newPending, status: 'Active', dealValue: 10 };
    const first = await stack.post(event, { headers: { 'webhook-id': id } });
    expect(first.status, first.text).toBe(200);
    expect(first.body.outcome).toBe('updated');
    const calls = stack.sandbox.requests.length;
    const tokens = stack.identity.issued.length;

    const deliveries: Array<Record<string, string>> = [{ 'webhook-id': id }, { 'Idempotency-Key': `"${id}"` }];
    for (const headers of deliveries) {
      const again = await stack.post(event, { headers });
      expect(again.status).toBe(200);
      expect(again.text).toBe(first.text);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.headers.get('ms-correlationid')).not.toBe(first.headers.get('ms-correlationid'));
    }
    const inBody = await stack.post({ ...event, eventId: id });
    expect(inBody.text).toBe(first.text);
    expect(stack.sandbox.requests.length).toBe(calls);
    expect(stack.identity.issued.length).toBe(tokens);
  });

  it('the same id for a different event → 422 idempotency_key_reused, nothing sent upstream', async () => {
    const id = newId();
    expect(
      (await stack.post({ referralId: SEED_IDS.newPending, notes: 'a' }, { headers: { 'webhook-id': id } })).status,
    ).toBe(200);
    const calls = stack.sandbox.requests.length;
    const reused = await stack.post({ referralId: SEED_IDS.newPending, notes: 'b' }, { headers: { 'webhook-id': id } });
    expect(reused.status).toBe(422);
    expect(reused.body).toMatchObject({ code: 'idempotency_key_reused', retryable: false });
    expect(stack.sandbox.requests.length).toBe(calls);
  });

  it('a final error is stored too: the redelivery gets the same 422 without asking Partner Center again', async () => {
    const id = newId();
    const event = { referralId: SEED_IDS.closedWon, dealValue: 1 };
    const first = await stack.post(event, { headers: { 'webhook-id': id } });
    expect(first.body).toMatchObject({ code: 'referral_closed' });
    const calls = stack.sandbox.requests.length;
    const again = await stack.post(event, { headers: { 'webhook-id': id } });
    expect(again.status).toBe(422);
    expect(again.text).toBe(first.text);
    expect(stack.sandbox.requests.length).toBe(calls);
  });

  it('a retryable failure is not stored: the redelivery runs again and applies', async () => {
    const id = newId();
    const event = { referralId: SEED_IDS.newPending, status: 'Active' };
    stack.sandbox.injectFault({ times: 50, action: { type: 'status', status: 503 } });
    const first = await stack.post(event, { headers: { 'webhook-id': id } });
    expect(first.status).toBe(503);
    stack.sandbox.clearFaults();
    const again = await stack.post(event, { headers: { 'webhook-id': id } });
    expect(again.status, again.text).toBe(200);
    expect(again.body.outcome).toBe('updated');
    expect(again.headers.get('idempotent-replayed')).toBeNull();
  });

  it('copies of one event arriving together apply exactly once; the others wait for its answer', async () => {
    const id = newId();
    stack.sandbox.injectFault({ method: 'GET', action: { type: 'delay', ms: 300 } });
    const event = { referralId: SEED_IDS.newReceived, status: 'Active', notes: 'once' };
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => stack.post(event, { headers: { 'webhook-id': id } })),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.text)).size).toBe(1);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
    expect(requestsOf(stack.sandbox, 'PUT')).toHaveLength(1);
    expect(requestsOf(stack.sandbox, 'GET')).toHaveLength(1);
  });
});

describe('ordering by occurredAt', () => {
  it('an event older than the last applied one is stale: 200, nothing read or written', async () => {
    const referralId = SEED_IDS.activeAccepted;
    const applied = await stack.post({ referralId, notes: 'newer', occurredAt: '2026-11-20T10:00:00Z' });
    expect(applied.body.outcome).toBe('updated');
    const calls = stack.sandbox.requests.length;
    const stale = await stack.post({ referralId, notes: 'older', occurredAt: '2026-11-20T11:00:00+02:00' });
    expect(stale.status).toBe(200);
    expect(stale.body).toMatchObject({
      outcome: 'stale',
      changes: [],
      lastAppliedOccurredAt: '2026-11-20T10:00:00.000Z',
    });
    expect(stack.sandbox.requests.length).toBe(calls);
    expect((stack.sandbox.getReferral(referralId)?.details as Record<string, unknown> | undefined)?.notes).toBe(
      'newer',
    );
    const later = await stack.post({ referralId, notes: 'latest', occurredAt: '2026-11-21T00:00:00Z' });
    expect(later.body.outcome).toBe('updated');
  });
});

const FIELDS = ['name', 'notes', 'statusReason', 'externalReferenceId', 'dealValue'] as const;

/** 100 events on one referral, each setting one of five fields to a value of its own. */
function fieldEvents(referralId: string) {
  return Array.from({ length: 100 }, (_, i) => {
    const field = FIELDS[i % FIELDS.length] as (typeof FIELDS)[number];
    return { referralId, [field]: field === 'dealValue' ? 1000 + i : `${field}-${i}` };
  });
}

/**
 * Nothing lost: per field, the events' changes form one sequence (each saw the value the one before it left),
 * as long as the number of events that named it, and Partner Center ends with its last value.
 */
function expectOneChainPerField(answers: Answer[], final: Record<string, unknown>, events: number): void {
  const details = final.details as Record<string, unknown>;
  for (const field of FIELDS) {
    const inDetails = field === 'dealValue' || field === 'notes';
    const path = inDetails ? `/details/${field}` : `/${field}`;
    const next = new Map<unknown, unknown>();
    for (const answer of answers) {
      const changes = answer.body.changes as Array<{ path: string; from: unknown; to: unknown }>;
      for (const change of changes) if (change.path === path) next.set(change.from, change.to);
    }
    const start = [...next.keys()].find((from) => ![...next.values()].includes(from));
    let value = start;
    let steps = 0;
    while (next.has(value)) {
      value = next.get(value);
      steps++;
    }
    expect(steps).toBe(events / FIELDS.length);
    expect(inDetails ? details[field] : final[field]).toEqual(value);
  }
}

describe('one update per referral at a time (group commit)', () => {
  it('100 parallel events on one referral touching different fields: all applied, no conflicts, nothing lost', async () => {
    const referralId = SEED_IDS.activeAccepted;
    const events = fieldEvents(referralId);
    const answers = await Promise.all(events.map((event) => stack.post(event)));
    expect(answers.map((a) => a.status)).toEqual(events.map(() => 200));
    expect(answers.every((a) => a.body.outcome === 'updated')).toBe(true);
    const puts = requestsOf(stack.sandbox, 'PUT').map((r) => JSON.parse(r.body) as Record<string, unknown>);
    // No PUT lost a race (one GET + one PUT per turn), and the events that waited for the same turn shared
    // them (group commit, docs/ordering.md#batches): far fewer than one GET + one PUT per event.
    expect(requestsOf(stack.sandbox, 'GET')).toHaveLength(puts.length);
    expect(stack.sandbox.stats().rejected412).toBe(0);
    expect(puts.length).toBeLessThanOrEqual(10);
    expectOneChainPerField(answers, stack.sandbox.getReferral(referralId) ?? {}, events.length);
  });
});

describe('two instances, one Table, one referral (group commit on each, eTags between them)', () => {
  it('100 parallel events split between two app processes: all applied once, nothing lost, the 412s re-planned', async () => {
    const identity = await startIdentityEmulator();
    const sandbox = await startPartnerCenterSandbox({ acceptToken: (token) => identity.isIssued(token) });
    const env = {
      PARTNER_CENTER_BASE_URL: sandbox.url,
      IDENTITY_ENDPOINT: identity.endpoint,
      IDENTITY_HEADER: identity.header,
      IDEMPOTENCY_TABLE_NAME: `t${randomUUID().replaceAll('-', '')}`,
      UPSTREAM_BUDGET_MS: '20000',
      CONCURRENCY_MAX_RETRIES: '10',
    };
    const instances = await Promise.all([startHostProcess(env), startHostProcess(env)]);
    try {
      // Latency, so that both instances hold batches at once and meet each other's writes (412).
      sandbox.injectFault({ action: { type: 'delay', ms: 50 }, times: 1_000_000 });
      const referralId = SEED_IDS.activeAccepted;
      const events = fieldEvents(referralId).map((event, i) => ({ ...event, eventId: `evt-two-${i}` }));
      const answers = await Promise.all(events.map((event, i) => (instances[i % 2] ?? instances[0]).post(event)));
      expect(answers.map((a) => a.status)).toEqual(events.map(() => 200));
      expect(answers.every((a) => a.body.outcome === 'updated')).toBe(true);
      expectOneChainPerField(answers, sandbox.getReferral(referralId) ?? {}, events.length);
      // Grouped on each instance: far fewer writes than events, whatever the 412s between the two.
      const stored = sandbox.stats().appliedPuts;
      expect(stored).toBeLessThan(events.length / 2);
      // A redelivery of any of them, to the other instance, is the stored answer: applied once.
      const again = await instances[1].post(events[0] as Record<string, unknown>);
      expect(again.headers.get('Idempotent-Replayed')).toBe('true');
      expect(sandbox.stats().appliedPuts).toBe(stored);
    } finally {
      await Promise.all(instances.map((instance) => instance.host.stop()));
      await sandbox.close();
      await identity.close();
    }
  });
});
