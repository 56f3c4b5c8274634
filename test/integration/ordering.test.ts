/**
 * Ordering by `occurredAt` across instances (docs/ordering.md): TWO app processes (two instances of the
 * function app) sharing one Table (the same IDEMPOTENCY_TABLE_NAME in the run's Azurite) and one Partner
 * Center sandbox whose every request is slowed by 300 ms, so that the two instances' reads and writes
 * overlap. Events for the same referrals are split between them; Partner Center's final state must be
 * the model's: per field, the value of the latest `occurredAt` among the events that named it and succeeded.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdentityEmulator, startIdentityEmulator } from '../../dev/emulators/identity.js';
import { makeReferral } from '../../dev/sandbox/seed.js';
import { type PartnerCenterSandbox, startPartnerCenterSandbox } from '../../dev/sandbox/server.js';
import { createTableIdempotencyStore } from '../../shared/idempotency/table-store.js';
import { type Answer, type HostProcess, startHostProcess } from '../support/stack.js';
import { testConfig } from '../support/use-cases.js';

const LATENCY_MS = 300;
const BASE = Date.parse('2026-11-25T10:00:00Z');
const at = (second: number) => new Date(BASE + second * 1000).toISOString();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let identity: IdentityEmulator;
let sandbox: PartnerCenterSandbox;
let instances: [HostProcess, HostProcess];
const TABLE_NAME = `t${randomUUID().replaceAll('-', '')}`;

/** The instances' table, read directly. */
function sharedTable() {
  const { idempotency } = testConfig({
    IDEMPOTENCY_STORE: 'table',
    AzureWebJobsStorage: String(process.env.AzureWebJobsStorage),
    IDEMPOTENCY_TABLE_NAME: TABLE_NAME,
  });
  if (idempotency.store !== 'table') throw new Error('expected the table store');
  return createTableIdempotencyStore(idempotency);
}

beforeAll(async () => {
  identity = await startIdentityEmulator();
  sandbox = await startPartnerCenterSandbox({ acceptToken: (token) => identity.isIssued(token) });
  // One table for both instances, as one storage account serves every instance of a function app.
  const env = {
    PARTNER_CENTER_BASE_URL: sandbox.url,
    IDENTITY_ENDPOINT: identity.endpoint,
    IDENTITY_HEADER: identity.header,
    IDEMPOTENCY_STORE: 'table',
    IDEMPOTENCY_TABLE_NAME: TABLE_NAME,
    UPSTREAM_BUDGET_MS: '20000',
    UPSTREAM_REQUEST_TIMEOUT_MS: '5000',
    RETRY_MAX_DELAY_MS: '400',
    CONCURRENCY_MAX_RETRIES: '10',
  };
  instances = await Promise.all([startHostProcess(env), startHostProcess(env)]);
  sandbox.injectFault({ action: { type: 'delay', ms: LATENCY_MS }, times: 1_000_000 });
});

afterAll(async () => {
  await Promise.all((instances ?? []).map((instance) => instance?.host.stop()));
  await sandbox?.close();
  await identity?.close();
});

function newReferral(): string {
  const referral = makeReferral({ details: { notes: 'initial', dealValue: 1, currency: 'USD' } });
  sandbox.putReferral(referral);
  return referral.id as string;
}

const details = (id: string) => sandbox.getReferral(id)?.details as Record<string, unknown>;

describe('two instances, one Table, one Partner Center with 300 ms upstream latency', () => {
  it('T2 (NEWER) to instance A, then, while its PUT is on its way, T1 (OLDER) to instance B: Partner Center keeps NEWER', async () => {
    const id = newReferral();
    const [a, b] = instances;

    const newer = a.post({ referralId: id, occurredAt: at(2), notes: 'NEWER (T2)' });
    // Not a fixed sleep: on a loaded machine A could start later than B. A's PUT reaching Partner Center (still
    // 300 ms from being applied) means A holds its claim on the field: B arrives strictly after it.
    const putOf = () => sandbox.requests.some((request) => request.method === 'PUT' && request.referralId === id);
    for (let waited = 0; !putOf(); waited += 10) {
      if (waited > 15_000) throw new Error('instance A never sent its PUT');
      await sleep(10);
    }
    const older = b.post({ referralId: id, occurredAt: at(1), notes: 'OLDER (T1)' });
    const [newerAnswer, olderAnswer] = await Promise.all([newer, older]);

    expect(newerAnswer.body).toMatchObject({ outcome: 'updated' });
    expect(olderAnswer.status).toBe(200);
    expect(olderAnswer.body).toMatchObject({
      outcome: 'stale',
      superseded: [{ path: '/details/notes', occurredAt: at(2) }],
    });
    expect(details(id).notes).toBe('NEWER (T2)');
  });

  it('events for several referrals, split between the instances in any order, end as per-field last-writer-wins', async () => {
    // A fixed plan (deterministic): per referral, events naming notes and/or dealValue, with times
    // arriving out of order and a tie; odd events go to A, even ones to B, started 40 ms apart.
    type Planned = { referralId: string; second: number; notes?: string; dealValue?: number };
    const shapes: Array<Array<Omit<Planned, 'referralId'>>> = [
      [
        { second: 5, notes: 'n5' },
        { second: 3, notes: 'n3', dealValue: 3 },
        { second: 4, dealValue: 4 },
        { second: 1, notes: 'n1', dealValue: 1001 },
      ],
      [
        { second: 2, dealValue: 2 },
        { second: 6, notes: 'n6' },
        { second: 6, dealValue: 66 },
        { second: 3, notes: 'n3', dealValue: 33 },
      ],
      [
        { second: 9, notes: 'n9', dealValue: 9 },
        { second: 8, notes: 'n8' },
        { second: 7, dealValue: 7 },
        { second: 10, notes: 'n10' },
      ],
    ];
    const plan: Planned[] = shapes.flatMap((events) => {
      const referralId = newReferral();
      return events.map((event) => ({ referralId, ...event }));
    });
    // Interleave the referrals: the first event of each, then the second of each, …
    const order = [0, 1, 2, 3].flatMap((i) => shapes.map((_, r) => plan[r * 4 + i] as Planned));

    const answers: Array<Promise<Answer>> = [];
    for (const [i, event] of order.entries()) {
      const { second, ...fields } = event;
      answers.push((instances[i % 2] as HostProcess).post({ ...fields, occurredAt: at(second) }));
      await sleep(40);
    }
    const results = await Promise.all(answers);

    const succeeded = order.filter((_, i) => {
      const result = results[i] as Answer;
      expect([200, 409], result.text).toContain(result.status);
      return result.status === 200 && result.body.outcome !== 'stale';
    });
    for (const referralId of new Set(order.map((e) => e.referralId))) {
      for (const field of ['notes', 'dealValue'] as const) {
        const namers = succeeded.filter((e) => e.referralId === referralId && e[field] !== undefined);
        const latest = Math.max(...namers.map((e) => e.second));
        const allowed = namers.filter((e) => e.second === latest).map((e) => e[field]);
        expect(allowed, `${referralId} ${field}`).toContainEqual(details(referralId)[field]);
      }
    }
    // With no faults but latency, every event succeeds: the latest of each field is the plan's.
    expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
    const finals = shapes.map((_, r) => details(plan[r * 4]?.referralId as string));
    expect(finals.map((d) => [d.notes, d.dealValue])).toEqual([
      ['n5', 4],
      ['n6', 66],
      ['n10', 9],
    ]);
  });
});

describe('ordered batches on two instances (group commit with occurredAt, docs/ordering.md#batches)', () => {
  it('40 events with ids and distinct times on one referral, all at once, split between the instances: per-field latest wins, few calls', async () => {
    const id = newReferral();
    const requestsBefore = sandbox.requests.filter((r) => r.referralId === id).length;
    // A fixed permutation of the seconds 1..40 (no ties), and fields chosen by the index: every field is named
    // by events arriving out of order, on both instances.
    const seconds = Array.from({ length: 40 }, (_, i) => ((i * 17) % 40) + 1);
    const events = seconds.map((second, i) => ({
      second,
      ...(i % 2 === 0 ? { notes: `n${second}` } : {}),
      ...(i % 3 === 0 ? { dealValue: second } : {}),
      ...(i % 2 === 1 && i % 3 !== 0 ? { name: `Name ${second}` } : {}),
    }));
    const answers = await Promise.all(
      events.map(({ second, ...fields }, i) =>
        (instances[i % 2] as HostProcess).post(
          { referralId: id, occurredAt: at(second), ...fields },
          { headers: { 'Idempotency-Key': `"ordered-batch-${id}-${i}"` } },
        ),
      ),
    );

    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    const latest = (field: 'notes' | 'dealValue' | 'name') =>
      events.filter((e) => e[field] !== undefined).reduce((a, b) => (b.second > a.second ? b : a))[field];
    const held = sandbox.getReferral(id) as Record<string, unknown>;
    expect([details(id).notes, details(id).dealValue, held.name]).toEqual([
      latest('notes'),
      latest('dealValue'),
      latest('name'),
    ]);
    // Each answer is consistent with its time: a field is superseded only by a later event.
    for (const [i, answer] of answers.entries()) {
      for (const s of (answer.body.superseded ?? []) as Array<{ occurredAt: string }>) {
        expect(Date.parse(s.occurredAt)).toBeGreaterThan(Date.parse(at((events[i] as { second: number }).second)));
      }
    }
    // Batched: far fewer than one GET + one PUT per event (each instance batches what waits behind its turn).
    const calls = sandbox.requests.filter((r) => r.referralId === id).length - requestsBefore;
    expect(calls / events.length).toBeLessThanOrEqual(0.5);
    // No claim is left pending in the record.
    const { record } = await sharedTable().readOrdering(id, {});
    expect(Object.values(record).filter((entry) => entry?.pending)).toEqual([]);
  });
});

describe('the ordering record in Table Storage (Azurite)', () => {
  const tableStore = () => {
    const { idempotency } = testConfig({
      IDEMPOTENCY_STORE: 'table',
      AzureWebJobsStorage: String(process.env.AzureWebJobsStorage),
      IDEMPOTENCY_TABLE_NAME: `t${randomUUID().replaceAll('-', '')}`,
    });
    if (idempotency.store !== 'table') throw new Error('expected the table store');
    return createTableIdempotencyStore(idempotency);
  };

  it('is written only from the version read (ETag): a second writer from the same version loses', async () => {
    const store = tableStore();
    const id = randomUUID();
    const first = { notes: { at: at(1) } };
    const second = { notes: { at: at(2) } };

    expect(await store.readOrdering(id)).toEqual({ record: {}, version: undefined });
    const v1 = await store.writeOrdering(id, first, undefined);
    expect(v1).toEqual(expect.any(String));
    expect(await store.writeOrdering(id, second, undefined)).toBeUndefined(); // the row exists already
    const v2 = await store.writeOrdering(id, second, v1);
    expect(v2).toEqual(expect.any(String));
    expect(await store.writeOrdering(id, first, v1)).toBeUndefined(); // a stale ETag
    expect(await store.readOrdering(id)).toEqual({ record: second, version: v2 });
  });
});
