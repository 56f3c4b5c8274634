/**
 * Throughput at concurrency 16, in process (docs/performance.md): the app's use case `processEvent` (the real
 * client against the loopback sandbox; for events with an id, the real Table store on Azurite) against the
 * floor a bare client reaches doing the same work, each measured in the same run, rounds interleaved:
 *
 * - events with an id: a bare undici GET + PUT plus the minimum Table writes an event with an id needs (one
 *   insert of a row and one update of it, `@azure/data-tables` on the same Azurite);
 * - events without an id: the bare GET + PUT.
 *
 * Each of the 16 workers sends its events one after another to a referral of its own (copies of the seeded
 * active referral), so no two events wait for the same referral's turn and group commit
 * (docs/ordering.md#batches) does not change the figure. Environment: BENCH_THROUGHPUT_EVENTS (events per
 * round, 480), BENCH_THROUGHPUT_RUNS (rounds, 5), to scale the run.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { parseConfig } from '../../shared/config.js';
import { TableClient } from '../../shared/idempotency/data-tables.js';
import { createTableIdempotencyStore } from '../../shared/idempotency/table-store.js';
import { startAzurite } from '../emulators/azurite.js';
import { SEED_IDS } from '../sandbox/seed.js';
import { startPartnerCenterSandbox } from '../sandbox/server.js';
import { median } from './cold-start.js';
import { bareUpdate, inProcessApp } from './in-process.js';
import { type BenchRow, benchSetting } from './rows.js';

const CONCURRENCY = 16;

export async function benchThroughput(): Promise<BenchRow[]> {
  const events = Math.max(CONCURRENCY, benchSetting('BENCH_THROUGHPUT_EVENTS', 480));
  const runs = benchSetting('BENCH_THROUGHPUT_RUNS', 5);
  const azurite = await startAzurite();
  const sandbox = await startPartnerCenterSandbox();
  const tableName = `bench${randomUUID().replaceAll('-', '')}`;
  const parsed = parseConfig({
    PARTNER_CENTER_BASE_URL: sandbox.url,
    IDEMPOTENCY_STORE: 'table',
    AzureWebJobsStorage: azurite.connectionString,
    IDEMPOTENCY_TABLE_NAME: tableName,
  });
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  const { config } = parsed;
  if (config.idempotency.store !== 'table') throw new Error('the bench needs the Table store');
  const app = inProcessApp(config, createTableIdempotencyStore(config.idempotency));
  const floorTable = TableClient.fromConnectionString(azurite.connectionString, `floor${tableName}`, {
    retryOptions: { maxRetries: 1, retryDelayInMs: 100 },
    allowInsecureConnection: true,
  });
  await floorTable.createTable();
  const pool = new Pool(sandbox.url, { connections: CONCURRENCY });
  const headers = {
    authorization: 'Bearer bench-token',
    accept: 'application/json',
    'content-type': 'application/json',
  };

  const template = sandbox.getReferral(SEED_IDS.activeAccepted);
  if (!template) throw new Error('the sandbox has no activeAccepted referral');
  const referrals = Array.from({ length: CONCURRENCY }, (_, w) => `throughput-${w}`);
  for (const id of referrals) sandbox.putReferral({ ...structuredClone(template), id });
  let sequence = 0;

  /** The minimum an event with an id writes: its row inserted (the claim), then replaced (the answer). */
  async function bareTableWrites(n: number): Promise<void> {
    const key = randomUUID().replaceAll('-', '');
    const row = { partitionKey: `event-${key.slice(0, 2)}`, rowKey: key, state: 'in-progress', n };
    const created = await floorTable.createEntity(row);
    await floorTable.updateEntity(
      { ...row, state: 'done', status: 200, body: `{"referralId":"bench","outcome":"updated","n":${n}}` },
      'Replace',
      { etag: created.etag ?? '*' },
    );
  }

  const series = {
    floorWithId: async (referralId: string, n: number) => {
      await bareTableWrites(n);
      await bareUpdate(pool, headers, referralId, n);
    },
    adapterWithId: (referralId: string, n: number) =>
      app.postOk({ referralId, dealValue: n, notes: `bench ${n}` }, { 'webhook-id': `bench-${randomUUID()}` }),
    bare: (referralId: string, n: number) => bareUpdate(pool, headers, referralId, n),
    adapterWithoutId: (referralId: string, n: number) => app.postOk({ referralId, dealValue: n, notes: `bench ${n}` }),
  };
  type Series = keyof typeof series;

  /** `count` events over the 16 workers, each on its own referral: events per second. */
  async function round(name: Series, count: number): Promise<number> {
    const perWorker = Math.ceil(count / CONCURRENCY);
    const started = performance.now();
    await Promise.all(
      referrals.map(async (referralId) => {
        for (let i = 0; i < perWorker; i++) await series[name](referralId, ++sequence);
      }),
    );
    return (perWorker * CONCURRENCY) / ((performance.now() - started) / 1000);
  }

  try {
    const names = Object.keys(series) as Series[];
    for (const name of names) await round(name, CONCURRENCY * 4); // warm-up: connections, lazy imports, the table
    const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Series, number[]>;
    for (let i = 0; i < runs; i++) {
      for (const name of names) samples[name].push(await round(name, events));
    }
    const perSecond = (name: Series) => median(samples[name]);
    const withId = perSecond('adapterWithId') / perSecond('floorWithId');
    const withoutId = perSecond('adapterWithoutId') / perSecond('bare');
    const rate = (value: number) => `${value.toFixed(0)} events/s`;
    return [
      {
        figure: `events with id, concurrency ${CONCURRENCY}, in process: throughput vs the floor (a bare client doing GET + PUT plus the minimum Table writes)`,
        baseline: `${rate(perSecond('floorWithId'))} (undici GET + PUT, one Table insert + one update)`,
        value: `${rate(perSecond('adapterWithId'))} (${withId.toFixed(2)}×)`,
        ratio: `${withId.toFixed(2)}×`,
        goal: '≥ 0.8×',
        met: withId >= 0.8,
      },
      {
        figure: `events without id, concurrency ${CONCURRENCY}, in process: throughput vs bare GET + PUT`,
        baseline: `${rate(perSecond('bare'))} (undici GET + PUT)`,
        value: `${rate(perSecond('adapterWithoutId'))} (${withoutId.toFixed(2)}×)`,
        ratio: `${withoutId.toFixed(2)}×`,
        goal: '≥ 0.9×',
        met: withoutId >= 0.9,
      },
    ];
  } finally {
    await pool.close();
    await app.client.close();
    await sandbox.close();
    await azurite.stop();
  }
}
