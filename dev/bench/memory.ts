/**
 * RSS with 500 events in flight against the same process at rest (docs/performance.md), in a child process of
 * its own so that nothing else the bench ran counts: the app's use case `processEvent` (events with ids, the
 * memory store, the real client, the default UPSTREAM_CONNECTIONS) and the loopback sandbox in that process.
 *
 * The child first runs BENCH_MEMORY_WARMUP (64) events at once with no delay (warm-up: the pool's connections,
 * the lazy imports, the code compiled; fewer than the 500, so that the heap they leave grown does not hide what
 * holding 500 costs), collects garbage and reads its RSS at rest; then the sandbox holds every call for
 * BENCH_MEMORY_HOLD_MS (4000), the 500 events are sent at once (each to a referral of its own, so none is
 * batched), and the highest RSS read while they are all in flight (waiting for a connection or on the wire)
 * is the figure. Environment: BENCH_MEMORY_EVENTS (500), BENCH_MEMORY_WARMUP, BENCH_MEMORY_HOLD_MS, to scale the run.
 */
import { fork } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../shared/config.js';
import { createMemoryIdempotencyStore } from '../../shared/idempotency/store.js';
import { SEED_IDS } from '../sandbox/seed.js';
import { startPartnerCenterSandbox } from '../sandbox/server.js';
import { inProcessApp } from './in-process.js';
import { type BenchRow, benchSetting } from './rows.js';

const MiB = 1024 * 1024;
const GOAL_MIB = 40;

interface MemoryFigures {
  events: number;
  warmup: number;
  /** Before the warm-up (the sandbox and its referrals ready, no event sent yet). */
  coldBytes: number;
  restBytes: number;
  inFlightBytes: number;
  /** Events still unanswered when the highest RSS was read. */
  unanswered: number;
}

/** In the child: the measurement itself. */
async function measure(): Promise<MemoryFigures> {
  const events = benchSetting('BENCH_MEMORY_EVENTS', 500);
  const holdMs = benchSetting('BENCH_MEMORY_HOLD_MS', 4000);
  const sandbox = await startPartnerCenterSandbox();
  const parsed = parseConfig({ PARTNER_CENTER_BASE_URL: sandbox.url, IDEMPOTENCY_STORE: 'memory' });
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  const app = inProcessApp(parsed.config, createMemoryIdempotencyStore());
  const template = sandbox.getReferral(SEED_IDS.activeAccepted);
  if (!template) throw new Error('the sandbox has no activeAccepted referral');
  const referrals = Array.from({ length: events }, (_, i) => `memory-${i}`);
  for (const id of referrals) sandbox.putReferral({ ...structuredClone(template), id });
  let sequence = 0;
  let unanswered = 0;
  const warmup = Math.min(events, benchSetting('BENCH_MEMORY_WARMUP', 64));
  const wave = (count: number) =>
    Promise.all(
      referrals.slice(0, count).map(async (referralId) => {
        const n = ++sequence;
        unanswered++;
        try {
          await app.postOk({ referralId, dealValue: n, notes: `memory ${n}` }, { 'webhook-id': `memory-${n}` });
        } finally {
          unanswered--;
        }
      }),
    );
  const collect = () => (globalThis as { gc?: () => void }).gc?.();
  try {
    collect();
    const coldBytes = process.memoryUsage.rss();
    await wave(warmup);
    sandbox.clearRequests();
    collect();
    await sleep(200);
    collect();
    const restBytes = process.memoryUsage.rss();
    sandbox.injectFault({ action: { type: 'delay', ms: holdMs }, times: Number.POSITIVE_INFINITY });
    const running = wave(events);
    let inFlightBytes = 0;
    let unansweredAtPeak = events;
    // Every event is in flight until the first held calls come back, `holdMs` after they were sent.
    const until = Date.now() + holdMs * 0.8;
    while (Date.now() < until) {
      await sleep(50);
      const rss = process.memoryUsage.rss();
      if (rss > inFlightBytes) {
        inFlightBytes = rss;
        unansweredAtPeak = unanswered;
      }
    }
    sandbox.clearFaults();
    await running;
    return { events, warmup, coldBytes, restBytes, inFlightBytes, unanswered: unansweredAtPeak };
  } finally {
    await app.client.close();
    await sandbox.close();
  }
}

/** In the parent: runs {@link measure} in a fresh child process and turns its figures into the row. */
export async function benchMemory(): Promise<BenchRow[]> {
  const child = fork(fileURLToPath(import.meta.url), ['--child'], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const figures = await new Promise<MemoryFigures>((resolve, reject) => {
    child.once('message', (message) => resolve(message as MemoryFigures));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the memory bench's child process exited with ${code}`)));
  });
  const delta = (figures.inFlightBytes - figures.restBytes) / MiB;
  return [
    {
      figure: `RSS with ${figures.events} events in flight vs at rest`,
      baseline: `${(figures.restBytes / MiB).toFixed(1)} MiB (the same process at rest, after a warm-up of ${figures.warmup} events; ${(figures.coldBytes / MiB).toFixed(1)} MiB before it)`,
      value: `${(figures.inFlightBytes / MiB).toFixed(1)} MiB (${delta >= 0 ? '+' : ''}${delta.toFixed(1)} MiB; ${figures.unanswered} unanswered then)`,
      goal: `≤ +${GOAL_MIB} MiB`,
      met: delta <= GOAL_MIB && figures.unanswered === figures.events,
    },
  ];
}

if (process.argv[2] === '--child' && process.send) {
  const send = process.send.bind(process);
  measure().then(
    (figures) => send(figures, () => process.exit(0)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
