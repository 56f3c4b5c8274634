/**
 * The reconciler (shared/use-cases/reconcile-deliveries.ts): a non-final record left without a message gets
 * exactly one new message; fresh and final records get none; a run is bounded; no delivery, no throw.
 */
import { describe, expect, it } from 'vitest';
import type { DeliveryChanges, DeliveryRecord } from '../../shared/delivery/store.js';
import { reconcileDeliveries, STALE_AFTER_MS } from '../../shared/use-cases/reconcile-deliveries.js';
import { ScriptedPartnerCenter } from '../support/scripted-partner-center.js';
import { REFERRAL_ID, type TestApp, testApp, withDelivery } from '../support/use-cases.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const clock = { now: () => NOW };
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const MIN = 60_000;

function setup() {
  const app = testApp(new ScriptedPartnerCenter([]));
  const delivery = withDelivery(app);
  return { app, ...delivery };
}

type Setup = ReturnType<typeof setup>;

/** A record as the store keeps it, accepted `acceptedMsAgo` ago, then changed as the worker would. */
async function record(
  { store }: Setup,
  eventId: string,
  acceptedMsAgo: number,
  changes: DeliveryChanges = {},
): Promise<DeliveryRecord> {
  const { record: created } = await store.create({
    eventId,
    referralId: REFERRAL_ID,
    fingerprint: `fp-${eventId}`,
    token: `token-${eventId}`,
    acceptedAt: ago(acceptedMsAgo),
    orderedAt: ago(acceptedMsAgo),
    event: { referralId: REFERRAL_ID, eventId, occurredAt: undefined, intent: {} as never },
  });
  if (Object.keys(changes).length === 0) return created;
  const updated = await store.update(created, changes);
  if (!updated) throw new Error('update lost');
  return updated;
}

function run(app: TestApp, options?: { maxRecords?: number }) {
  const record = (...args: unknown[]) => app.lines.push(args.map(String).join(' '));
  return reconcileDeliveries({ log: record, warn: record, error: record }, app, clock, options);
}

const sentIds = (queue: Setup['queue']) => queue.sent.map((s) => s.message.eventId).sort();

describe('reconcileDeliveries', () => {
  it('re-sends exactly one message, without delay, for a stale record of each non-final state; none for fresh or final ones', async () => {
    const s = setup();
    const budgetMs = s.app.runtimeValue.config.retry.budgetMs;
    // queued
    await record(s, 'queued-stale', 20 * MIN);
    await record(s, 'queued-fresh', 5 * MIN);
    // A replayed record: acceptedAt reset at replay, an older last attempt.
    await record(s, 'queued-replayed-fresh', 2 * MIN, { attempts: 3, lastAttemptAt: ago(60 * MIN) });
    await record(s, 'queued-replayed-stale', 20 * MIN, { attempts: 3, lastAttemptAt: ago(30 * MIN) });
    await record(s, 'queued-attempt-fresh', 20 * MIN, { attempts: 1, lastAttemptAt: ago(2 * MIN) });
    // retrying
    await record(s, 'retrying-stale', 60 * MIN, {
      state: 'retrying',
      attempts: 1,
      lastAttemptAt: ago(50 * MIN),
      nextAttemptAt: ago(STALE_AFTER_MS + MIN),
    });
    await record(s, 'retrying-due-soon', 60 * MIN, {
      state: 'retrying',
      attempts: 1,
      lastAttemptAt: ago(50 * MIN),
      nextAttemptAt: ago(-5 * MIN),
    });
    await record(s, 'retrying-just-due', 60 * MIN, {
      state: 'retrying',
      attempts: 1,
      lastAttemptAt: ago(50 * MIN),
      nextAttemptAt: ago(STALE_AFTER_MS - MIN),
    });
    // running
    await record(s, 'running-stale', 60 * MIN, {
      state: 'running',
      attempts: 1,
      lastAttemptAt: ago(budgetMs + 15_000 + STALE_AFTER_MS + MIN),
    });
    await record(s, 'running-fresh', 60 * MIN, {
      state: 'running',
      attempts: 1,
      lastAttemptAt: ago(budgetMs + 15_000 + STALE_AFTER_MS - MIN),
    });
    // final: never
    for (const state of ['succeeded', 'failed', 'dead_lettered'] as const) {
      await record(s, `${state}-old`, 600 * MIN, { state, attempts: 1, lastAttemptAt: ago(500 * MIN) });
    }

    const summary = await run(s.app);

    expect(sentIds(s.queue)).toEqual(['queued-replayed-stale', 'queued-stale', 'retrying-stale', 'running-stale']);
    expect(s.queue.sent.every((sent) => sent.delaySeconds === 0 && sent.message.v === 1)).toBe(true);
    expect(summary).toMatchObject({
      examined: 10,
      resent: 4,
      truncated: false,
      byState: {
        queued: { examined: 5, resent: 2 },
        retrying: { examined: 3, resent: 1 },
        running: { examined: 2, resent: 1 },
      },
    });
    // The records are untouched: the worker writes them.
    expect(s.store.records().find((r) => r.eventId === 'queued-stale')).toMatchObject({ state: 'queued', attempts: 0 });
    // One line per run, counts only (no ids, no customer values).
    expect(s.app.lines).toHaveLength(1);
    const line = JSON.parse(s.app.lines[0] as string);
    expect(line).toMatchObject({ logCode: 'DELIVERY_RECONCILED', examined: 10, resent: 4 });
    expect(s.app.lines[0]).not.toMatch(/stale|fresh|ref-0001/);
  });

  it('examines at most maxRecords per run, paging through the store', async () => {
    const s = setup();
    for (let i = 0; i < 250; i++) await record(s, `old-${String(i).padStart(3, '0')}`, 20 * MIN);
    const summary = await run(s.app, { maxRecords: 120 });
    expect(summary).toMatchObject({ examined: 120, resent: 120, truncated: true });
    expect(new Set(sentIds(s.queue)).size).toBe(120);
    expect(JSON.parse(s.app.lines[0] as string)).toMatchObject({ logCode: 'DELIVERY_RECONCILE_PARTIAL' });
    expect(s.app.lines).toHaveLength(1);

    const all = setup();
    for (let i = 0; i < 250; i++) await record(all, `old-${i}`, 20 * MIN);
    expect(await run(all.app)).toMatchObject({ examined: 250, resent: 250, truncated: false });
  });

  it('without asynchronous delivery: one line, no throw', async () => {
    const app = testApp(new ScriptedPartnerCenter([]));
    await expect(run(app)).resolves.toMatchObject({ examined: 0, resent: 0 });
    expect(app.lines).toHaveLength(1);
    expect(JSON.parse(app.lines[0] as string)).toMatchObject({ logCode: 'DELIVERY_NOT_CONFIGURED' });
  });

  it('a failing queue: one error line with the counts so far, no throw', async () => {
    const s = setup();
    await record(s, 'queued-stale', 20 * MIN);
    s.queue.send = async () => {
      throw new Error('down');
    };
    await expect(run(s.app)).resolves.toMatchObject({ resent: 0, examined: 1 });
    expect(s.app.lines).toHaveLength(1);
    expect(JSON.parse(s.app.lines[0] as string)).toMatchObject({
      logCode: 'DELIVERY_RECONCILE_FAILED',
      cause: 'Error',
    });
  });
});
