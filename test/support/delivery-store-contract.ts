/**
 * What every DeliveryStore promises (shared/delivery/store.ts), as one suite run against each implementation:
 * the memory store (test/unit/delivery-store.test.ts) and the Table store on Azurite
 * (test/integration/delivery-store.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DeliveryRecord, DeliveryStore, NewDelivery } from '../../shared/delivery/store.js';

export function newDelivery(overrides: Partial<NewDelivery> = {}): NewDelivery {
  const eventId = overrides.eventId ?? `evt-${randomUUID()}`;
  const now = new Date().toISOString();
  return {
    eventId,
    referralId: `ref-${randomUUID()}`,
    fingerprint: 'f'.repeat(64),
    token: randomUUID(),
    acceptedAt: now,
    orderedAt: now,
    event: {
      referralId: overrides.referralId ?? 'ref',
      eventId,
      occurredAt: '2026-01-02T03:04:05.000Z',
      intent: { status: 'Active', dealValue: 10, notes: 'a note' },
    },
    ...overrides,
  };
}

/** Every page of a listing (each at most `top` items). */
async function listAll(
  store: DeliveryStore,
  filter: { state?: DeliveryRecord['state']; referralId?: string },
  top: number,
): Promise<{ items: DeliveryRecord[]; pages: number }> {
  const items: DeliveryRecord[] = [];
  let continuationToken: string | undefined;
  let pages = 0;
  do {
    const page = await store.list({ ...filter, top, ...(continuationToken ? { continuationToken } : {}) });
    expect(page.items.length).toBeLessThanOrEqual(top);
    items.push(...page.items);
    continuationToken = page.continuationToken;
    pages++;
  } while (continuationToken !== undefined && pages < 100);
  return { items, pages };
}

export function deliveryStoreContract(name: string, makeStore: () => DeliveryStore): void {
  describe(`DeliveryStore contract: ${name}`, () => {
    const store = makeStore();

    it('create makes a queued record once; a second create returns the existing one', async () => {
      const input = newDelivery();
      const first = await store.create(input);
      expect(first.created).toBe(true);
      expect(first.record).toMatchObject({
        ...input,
        state: 'queued',
        attempts: 0,
        lastAttemptAt: null,
        nextAttemptAt: null,
        deadLetteredAt: null,
        lastError: null,
        changedPaths: null,
        answer: null,
      });
      expect(first.record.version).toEqual(expect.any(String));

      const again = await store.create({ ...input, fingerprint: 'other', token: 'other' });
      expect(again.created).toBe(false);
      expect(again.record).toEqual(first.record);
      expect(await store.get(input.eventId)).toEqual(first.record);
      expect(await store.get(`evt-${randomUUID()}`)).toBeUndefined();
    });

    it('update applies changes at the current version; a stale version gets undefined and changes nothing', async () => {
      const { record } = await store.create(newDelivery());
      const running = await store.update(record, {
        state: 'running',
        attempts: 1,
        lastAttemptAt: new Date().toISOString(),
      });
      expect(running).toMatchObject({ state: 'running', attempts: 1, eventId: record.eventId });
      expect(running?.version).not.toBe(record.version);
      expect(await store.update(record, { state: 'dead_lettered' })).toBeUndefined();
      expect(await store.get(record.eventId)).toEqual(running);

      const done = await store.update(running as DeliveryRecord, {
        state: 'failed',
        event: null,
        lastError: { code: 'referral_not_found', status: 404 },
        changedPaths: ['/status', '/details/dealValue'],
        answer: { status: 404, headers: { 'content-type': 'application/problem+json' }, body: '{"code":"x"}' },
      });
      expect(done).toMatchObject({
        state: 'failed',
        event: null,
        lastError: { code: 'referral_not_found', status: 404 },
        changedPaths: ['/status', '/details/dealValue'],
      });
      expect(await store.get(record.eventId)).toEqual(done);
    });

    it('a null field clears what was there', async () => {
      const { record } = await store.create(newDelivery());
      const retrying = await store.update(record, {
        state: 'retrying',
        nextAttemptAt: new Date().toISOString(),
        lastError: { code: 'upstream_unavailable', status: 503 },
      });
      const cleared = await store.update(retrying as DeliveryRecord, { nextAttemptAt: null, lastError: null });
      expect(cleared).toMatchObject({ state: 'retrying', nextAttemptAt: null, lastError: null });
      expect(await store.get(record.eventId)).toEqual(cleared);
    });

    it('remove deletes at the current version only', async () => {
      const { record } = await store.create(newDelivery());
      const newer = await store.update(record, { attempts: 1 });
      await store.remove(record); // stale: ignored
      expect(await store.get(record.eventId)).toEqual(newer);
      await store.remove(newer as DeliveryRecord);
      expect(await store.get(record.eventId)).toBeUndefined();
      await store.remove(newer as DeliveryRecord); // gone: ignored
      expect((await store.create({ ...newDelivery(), eventId: record.eventId })).created).toBe(true);
    });

    // Big values are ASCII: Azurite's Table service corrupts a multi-byte character that straddles two chunks of a
    // request body (https://github.com/Azure/Azurite/issues/2670); real Azure Table Storage does not. Small
    // non-ASCII values (one chunk) are checked separately.
    it('a big answer body (over 30,000 characters) and a big event round-trip', async () => {
      const notes = 'notes '.repeat(8_000);
      const { record } = await store.create(
        newDelivery({ event: { referralId: 'r', eventId: 'e', occurredAt: undefined, intent: { notes } } }),
      );
      expect(record.event?.intent.notes).toBe(notes);
      expect((await store.get(record.eventId))?.event?.intent.notes === notes).toBe(true);
      const body = JSON.stringify({ notes: 'answer '.repeat(15_000) });
      const done = await store.update(record, {
        state: 'succeeded',
        event: null,
        answer: { status: 200, headers: { 'content-type': 'application/json' }, body },
      });
      const read = await store.get(record.eventId);
      expect(read?.answer?.body.length).toBe(body.length);
      expect(read?.answer?.body === body).toBe(true);
      expect(read).toEqual(done);
    });

    it('non-ASCII values round-trip', async () => {
      const notes = 'Müller & Søn, 東京 🚀';
      const { record } = await store.create(
        newDelivery({ event: { referralId: 'r', eventId: 'e', occurredAt: undefined, intent: { notes } } }),
      );
      const done = await store.update(record, {
        state: 'succeeded',
        event: null,
        answer: { status: 200, headers: {}, body: JSON.stringify({ notes }) },
      });
      expect(done?.answer?.body).toBe(JSON.stringify({ notes }));
      const read = await store.get(record.eventId);
      expect(read?.answer?.body).toBe(JSON.stringify({ notes }));
    });

    it('list filters by state and by referral, page by page', async () => {
      const referralId = `ref-${randomUUID()}`;
      const created: DeliveryRecord[] = [];
      for (let i = 0; i < 7; i++) created.push((await store.create(newDelivery({ referralId }))).record);
      const dead = `dead-${randomUUID()}`;
      for (const record of created.slice(0, 3)) {
        await store.update(record, {
          state: 'dead_lettered',
          deadLetteredAt: new Date().toISOString(),
          lastError: { code: dead, status: 503 },
        });
      }
      const other = (await store.create(newDelivery())).record;

      const byReferral = await listAll(store, { referralId }, 2);
      expect(byReferral.items.map((item) => item.eventId).sort()).toEqual(created.map((r) => r.eventId).sort());
      expect(byReferral.pages).toBeGreaterThanOrEqual(4);

      const deadForReferral = await listAll(store, { referralId, state: 'dead_lettered' }, 2);
      expect(deadForReferral.items.map((item) => item.eventId).sort()).toEqual(
        created
          .slice(0, 3)
          .map((r) => r.eventId)
          .sort(),
      );
      expect(deadForReferral.items.every((item) => item.lastError?.code === dead)).toBe(true);

      const allDead = await listAll(store, { state: 'dead_lettered' }, 50);
      expect(allDead.items.filter((item) => item.lastError?.code === dead)).toHaveLength(3);
      expect(allDead.items.every((item) => item.state === 'dead_lettered')).toBe(true);

      const queued = await listAll(store, { state: 'queued' }, 50);
      expect(queued.items.map((item) => item.eventId)).toContain(other.eventId);
      expect(queued.items.map((item) => item.eventId)).not.toContain(created[0]?.eventId);
    });
  });
}
