/**
 * A burst on one referral (docs/performance.md, docs/ordering.md#batches): a CRM bulk edit sends 50 events for
 * the same referral at once. In process: the use case's `applyEvent` (idempotency, the batching step, the
 * update), the app's Partner Center client, the loopback sandbox answering every call after 100 ms. The
 * baseline is the same 50 events spread over 50 referrals, measured in the same run; each figure is the
 * median of `BENCH_BURST_RUNS` (3) rounds, the series interleaved. The burst is measured twice: events without
 * `occurredAt`, and events with it (each later than the one before: ordered batches, docs/ordering.md#batches).
 */
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../../shared/config.js';
import { parseUpdateEvent } from '../../shared/contract/update-event.js';
import { createMemoryIdempotencyStore } from '../../shared/idempotency/store.js';
import { createPartnerCenterClient } from '../../shared/partner-center/client.js';
import { newStats } from '../../shared/telemetry/event-record.js';
import { eventDeadline } from '../../shared/use-cases/deadline.js';
import { applyEvent, type EventRuntime } from '../../shared/use-cases/process-event.js';
import { ReferralQueues } from '../../shared/use-cases/referral-batch.js';
import { SEED_IDS } from '../sandbox/seed.js';
import { startPartnerCenterSandbox } from '../sandbox/server.js';
import { median } from './cold-start.js';
import { FIXED_TOKENS } from './in-process.js';
import { type BenchRow, benchSetting } from './rows.js';

const EVENTS = 50;
const DELAY_MS = 100;
const RUNS = benchSetting('BENCH_BURST_RUNS', 3);
const quiet = { log: () => {}, warn: () => {}, error: () => {} };

export async function benchBurst(): Promise<BenchRow[]> {
  const sandbox = await startPartnerCenterSandbox();
  const parsed = parseConfig({ PARTNER_CENTER_BASE_URL: sandbox.url, IDEMPOTENCY_STORE: 'memory' });
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  const { config } = parsed;
  const client = createPartnerCenterClient(config.partnerCenter, config.retry, FIXED_TOKENS);
  const runtime: EventRuntime = {
    config,
    client,
    idempotency: createMemoryIdempotencyStore(),
    referrals: new ReferralQueues(),
  };
  const template = sandbox.getReferral(SEED_IDS.activeAccepted);
  if (!template) throw new Error('the sandbox has no activeAccepted referral');
  const spreadIds = Array.from({ length: EVENTS }, (_, i) => `burst-spread-${i}`);
  for (const id of spreadIds) sandbox.putReferral({ ...structuredClone(template), id });
  let round = 0;

  /** The events at once, with event ids (as Power Automate sends them): time to the last answer, upstream calls. */
  async function burst(referralIds: readonly string[], ordered = false): Promise<{ ms: number; calls: number }> {
    round++;
    const at = (i: number) => new Date(Date.now() - 60_000 + i).toISOString();
    const events = referralIds.map((referralId, i) =>
      parseUpdateEvent({
        referralId,
        eventId: `burst-${round}-${i}`,
        dealValue: round * 1000 + i,
        ...(ordered ? { occurredAt: at(i) } : {}),
      }),
    );
    sandbox.clearRequests();
    const started = performance.now();
    const answers = await Promise.all(
      events.map((event) =>
        applyEvent(event, runtime, {
          correlationId: crypto.randomUUID(),
          logger: quiet,
          stats: newStats(),
          deadline: eventDeadline(config.retry.budgetMs),
          idempotency: 'none',
        }),
      ),
    );
    const ms = performance.now() - started;
    const failed = answers.find((a) => a.response.status !== 200);
    if (failed) throw new Error(`a burst event answered ${failed.response.status}: ${failed.response.body}`);
    return { ms, calls: sandbox.requests.length };
  }

  const oneReferral = Array.from({ length: EVENTS }, () => SEED_IDS.activeAccepted);
  try {
    await burst(spreadIds.slice(0, 4)); // warm-up: the pool's connections, the lazy imports
    sandbox.injectFault({ action: { type: 'delay', ms: DELAY_MS }, times: Number.POSITIVE_INFINITY });
    const one = { ms: [] as number[], calls: [] as number[] };
    const ordered = { ms: [] as number[], calls: [] as number[] };
    const spread = { ms: [] as number[], calls: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      for (const [series, ids, withTimes] of [
        [spread, spreadIds, false],
        [one, oneReferral, false],
        [ordered, oneReferral, true],
      ] as const) {
        const { ms, calls } = await burst(ids, withTimes);
        series.ms.push(ms);
        series.calls.push(calls / EVENTS);
      }
    }
    const oneMs = median(one.ms);
    const spreadMs = median(spread.ms);
    const oneCalls = median(one.calls);
    const orderedMs = median(ordered.ms);
    const orderedCalls = median(ordered.calls);
    return [
      {
        figure: `${EVENTS} events on one referral, ${DELAY_MS} ms per upstream call: time to the last answer`,
        baseline: `${seconds(spreadMs)} (the same ${EVENTS} events over ${EVENTS} referrals)`,
        value: `${seconds(oneMs)} (${(oneMs / spreadMs).toFixed(2)}× the baseline)`,
        goal: '≤ 1.0 s',
        met: oneMs <= 1000,
      },
      {
        figure: 'same: upstream calls per event',
        baseline: `${median(spread.calls).toFixed(2)} (over ${EVENTS} referrals)`,
        value: oneCalls.toFixed(2),
        goal: '≤ 0.2',
        met: oneCalls <= 0.2,
      },
      {
        figure: `same ${EVENTS} events with \`occurredAt\` (ordered batches): time to the last answer`,
        baseline: `${seconds(spreadMs)} (the same ${EVENTS} events over ${EVENTS} referrals, without)`,
        value: `${seconds(orderedMs)} (${(orderedMs / spreadMs).toFixed(2)}× the baseline)`,
        goal: '≤ 1.0 s',
        met: orderedMs <= 1000,
      },
      {
        figure: 'same, with `occurredAt`: upstream calls per event',
        baseline: `${median(spread.calls).toFixed(2)} (over ${EVENTS} referrals)`,
        value: orderedCalls.toFixed(2),
        goal: '≤ 0.2',
        met: orderedCalls <= 0.2,
      },
    ];
  } finally {
    await client.close();
    await sandbox.close();
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
