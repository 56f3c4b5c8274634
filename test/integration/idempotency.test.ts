/**
 * Nothing applied twice: event ids, stored answers (Azure Table Storage on Azurite), ordering by
 * occurredAt, and one update at a time per referral. Through the local host, against the sandbox.
 */
import { describe, expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { requestsOf, useStack } from '../support/stack.js';

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

describe('one update per referral at a time (group commit)', () => {
  it('100 parallel events on one referral touching different fields: all applied, no conflicts, nothing lost', async () => {
    const referralId = SEED_IDS.activeAccepted;
    const fields = ['name', 'notes', 'statusReason', 'externalReferenceId', 'dealValue'] as const;
    const events = Array.from({ length: 100 }, (_, i) => {
      const field = fields[i % fields.length] as (typeof fields)[number];
      return { referralId, [field]: field === 'dealValue' ? 1000 + i : `${field}-${i}` };
    });
    const answers = await Promise.all(events.map((event) => stack.post(event)));
    expect(answers.map((a) => a.status)).toEqual(events.map(() => 200));
    expect(answers.every((a) => a.body.outcome === 'updated')).toBe(true);
    const puts = requestsOf(stack.sandbox, 'PUT').map((r) => JSON.parse(r.body) as Record<string, unknown>);
    // No PUT lost a race (one GET + one PUT per turn), and the events that waited for the same turn shared
    // them (group commit, docs/ordering.md#batches): far fewer than one GET + one PUT per event.
    expect(requestsOf(stack.sandbox, 'GET')).toHaveLength(puts.length);
    expect(stack.sandbox.stats().rejected412).toBe(0);
    expect(puts.length).toBeLessThanOrEqual(10);
    // Nothing lost: per field, the events' changes form one sequence (each saw the value the one before it
    // left), and Partner Center ends with its last value.
    const final = stack.sandbox.getReferral(referralId) ?? {};
    const details = final.details as Record<string, unknown>;
    for (const field of fields) {
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
      expect(steps).toBe(events.length / fields.length);
      expect(inDetails ? details[field] : final[field]).toEqual(value);
    }
  });
});
