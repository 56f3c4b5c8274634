/**
 * Admission and throttling under load (docs/behaviour.md#admission-to-partner-center,
 * docs/partner-center-api.md#throttling-and-retries), in process: the real client and update use case
 * against the loopback sandbox, the events of one referral one after another (the app's per-referral lock),
 * each event with its own deadline from its start, as the app runs them.
 *
 * - Throttled: events under the sandbox's rate-limit mode; how many `429`s the instance receives per event.
 * - Backlog: many events at once against a slow Partner Center (a delay on every call); upstream calls per
 *   event (a request that times out while waiting for a connection would be retried) and `504`s.
 *
 * Counts, never timings, decide whether a goal is met. Environment: BENCH_THROTTLE_EVENTS (200),
 * BENCH_THROTTLE_REFERRALS (20), BENCH_THROTTLE_RATE (10 requests/s), BENCH_BACKLOG_EVENTS (450),
 * BENCH_BACKLOG_DELAY_MS (1100), to scale the runs down.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../../shared/config.js';
import { parseUpdateEvent } from '../../shared/contract/update-event.js';
import { isAdapterError } from '../../shared/core/errors.js';
import {
  createPartnerCenterClient,
  type PartnerCenterClient,
  type RequestContext,
} from '../../shared/partner-center/client.js';
import { INITIAL_WINDOW, WINDOW_GROWTH } from '../../shared/partner-center/throttle.js';
import { newStats } from '../../shared/telemetry/event-record.js';
import { eventDeadline } from '../../shared/use-cases/deadline.js';
import { KeyedLock } from '../../shared/use-cases/keyed-lock.js';
import { updateReferral } from '../../shared/use-cases/update-referral.js';
import { makeReferral } from '../sandbox/seed.js';
import { type RateLimit, startPartnerCenterSandbox } from '../sandbox/server.js';
import { FIXED_TOKENS } from './in-process.js';
import { type BenchRow, benchSetting } from './rows.js';

export interface LoadOptions {
  events: number;
  referrals: number;
  /** The sandbox's rate-limit mode; none when absent. */
  rateLimit?: RateLimit;
  /** A delay before every upstream answer (ms). */
  delayMs?: number;
  /** App settings over the defaults (README's configuration table). */
  settings?: Record<string, string>;
}

export interface LoadResult {
  events: number;
  /** Events answered `updated`. */
  applied: number;
  /** Error codes of the events that failed, with their counts. */
  failures: Record<string, number>;
  /** Requests the sandbox received. */
  upstreamRequests: number;
  /** `429`s the sandbox's rate-limit mode answered. */
  throttled: number;
  /** `429`s the client saw (the events' stats). */
  throttlesSeen: number;
  /**
   * `429`s for requests sent before the first `429` came back (nothing can stop those: the instance learns of
   * the limit only from that answer).
   */
  firstWave: number;
  /**
   * What the slow start bounds the first wave to (shared/partner-center/throttle.ts): INITIAL_WINDOW +
   * WINDOW_GROWTH × the requests sent before the first `429` came back that Partner Center accepted.
   */
  firstWaveBound: number;
  /** Referrals whose final `details.dealValue` is not their last event's. */
  wrongFinalValues: number;
  /** From the start to the first and to the last answer (ms), for the report only. */
  firstAnswerMs: number;
  lastAnswerMs: number;
}

/** Runs `events` update events at once over `referrals` referrals (event i sets dealValue i + 1 on referral i mod n). */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const sandbox = await startPartnerCenterSandbox({
    seed: false,
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
  });
  const ids = Array.from({ length: options.referrals }, () => {
    const referral = makeReferral();
    sandbox.putReferral(referral);
    return referral.id;
  });
  if (options.delayMs) {
    sandbox.injectFault({ times: Number.MAX_SAFE_INTEGER, action: { type: 'delay', ms: options.delayMs } });
  }
  const parsed = parseConfig({
    PARTNER_CENTER_BASE_URL: sandbox.url,
    IDEMPOTENCY_STORE: 'memory',
    ...options.settings,
  });
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  const { config } = parsed;
  const real = createPartnerCenterClient(config.partnerCenter, config.retry, FIXED_TOKENS);
  /** Every answer: when its request was sent and when it came back (ms since the start), and its status. */
  const answers: Array<{ sentAt: number; at: number; status: number | undefined }> = [];
  const watch = (context: RequestContext): RequestContext => ({
    ...context,
    observe: (durationMs, status) => {
      const at = performance.now() - started;
      answers.push({ sentAt: at - durationMs, at, status });
      context.observe?.(durationMs, status);
    },
  });
  const client: PartnerCenterClient = {
    getReferral: (id, context) => real.getReferral(id, watch(context)),
    putReferral: (id, body, eTag, context) => real.putReferral(id, body, eTag, watch(context)),
    writeReferral: (id, write, eTag, context) => real.writeReferral(id, write, eTag, watch(context)),
    writeMethod: real.writeMethod,
    close: () => real.close(),
  };
  const started = performance.now();
  const lock = new KeyedLock();
  const failures: Record<string, number> = {};
  let applied = 0;
  let throttlesSeen = 0;
  let firstAnswerMs = Number.POSITIVE_INFINITY;
  let lastAnswerMs = 0;
  const last = new Map<string, number>();
  try {
    await Promise.all(
      Array.from({ length: options.events }, async (_, i) => {
        const referralId = ids[i % ids.length] as string;
        last.set(referralId, i + 1);
        const event = parseUpdateEvent({ referralId, dealValue: i + 1 });
        const deadline = eventDeadline(config.retry.budgetMs);
        const stats = newStats();
        try {
          const result = await lock.run(
            referralId,
            () =>
              updateReferral(
                event,
                { client, retry: config.retry },
                {
                  correlationId: randomUUID(),
                  stats,
                  abortSignal: deadline.signal,
                  expiresAt: deadline.clock.expiresAt,
                },
              ),
            { abortSignal: deadline.signal },
          );
          if (result.outcome === 'updated') applied++;
          else failures[result.outcome] = (failures[result.outcome] ?? 0) + 1;
        } catch (error) {
          const code = isAdapterError(error) ? error.code : 'upstream_timeout (waiting for the referral)';
          failures[code] = (failures[code] ?? 0) + 1;
        } finally {
          throttlesSeen += stats.throttles;
          const at = performance.now() - started;
          firstAnswerMs = Math.min(firstAnswerMs, at);
          lastAnswerMs = Math.max(lastAnswerMs, at);
        }
      }),
    );
    const stats = sandbox.stats();
    let wrongFinalValues = 0;
    for (const [id, value] of last) {
      const details = sandbox.getReferral(id)?.details as Record<string, unknown> | undefined;
      if (details?.dealValue !== value) wrongFinalValues++;
    }
    const first = answers.find((answer) => answer.status === 429)?.at ?? Number.POSITIVE_INFINITY;
    const before = answers.filter((answer) => answer.sentAt < first);
    const firstWave = before.filter((answer) => answer.status === 429).length;
    const acceptedBefore = before.filter(
      (answer) => answer.status !== undefined && answer.status < 500 && answer.status !== 429,
    ).length;
    return {
      firstWave,
      firstWaveBound: INITIAL_WINDOW + WINDOW_GROWTH * acceptedBefore,
      events: options.events,
      applied,
      failures,
      upstreamRequests: stats.requests,
      throttled: stats.throttled,
      throttlesSeen,
      wrongFinalValues,
      firstAnswerMs,
      lastAnswerMs,
    };
  } finally {
    await client.close();
    await sandbox.close();
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const failed = (result: LoadResult) =>
  Object.entries(result.failures)
    .map(([code, count]) => `${count} ${code}`)
    .join(', ') || 'none failed';

/** The rows of the two figures of issue 13 this module measures (both runs at once: under ~45 s by default). */
export async function benchThrottle(): Promise<BenchRow[]> {
  const throttleEvents = benchSetting('BENCH_THROTTLE_EVENTS', 200);
  const perSecond = benchSetting('BENCH_THROTTLE_RATE', 10, false);
  const backlogEvents = benchSetting('BENCH_BACKLOG_EVENTS', 450);
  const delayMs = benchSetting('BENCH_BACKLOG_DELAY_MS', 1100, false);
  const [throttled, backlog] = await Promise.all([
    runLoad({
      events: throttleEvents,
      referrals: benchSetting('BENCH_THROTTLE_REFERRALS', 20),
      rateLimit: { perSecond },
    }),
    runLoad({ events: backlogEvents, referrals: backlogEvents, delayMs }),
  ]);
  const perEvent = throttled.throttled / throttled.events;
  const callsPerEvent = backlog.upstreamRequests / backlog.events;
  const timeouts = backlog.failures.upstream_timeout ?? 0;
  return [
    {
      figure: `${throttleEvents} events under a ${perSecond} requests/s rate limit: 429s received per event`,
      baseline: '0 (a client that never exceeds the limit)',
      // The first wave (requests already sent when the first 429 came back) is the floor: the instance learns of
      // the limit from that answer; its slow start bounds it (docs/partner-center-api.md#throttling-and-retries).
      value: `${perEvent.toFixed(3)} (${throttled.throttled} 429s in ${throttled.upstreamRequests} requests: ${throttled.firstWave} in the first wave (slow start's bound ${throttled.firstWaveBound}), ${throttled.throttled - throttled.firstWave} after it; ${throttled.applied}/${throttled.events} applied, ${failed(throttled)}; last answer after ${seconds(throttled.lastAnswerMs)})`,
      goal: '≤ 0.05',
      met: perEvent <= 0.05 && throttled.applied === throttled.events && throttled.wrongFinalValues === 0,
    },
    {
      figure: `${backlogEvents} events, ${(delayMs / 1000).toFixed(1)} s per upstream call: upstream calls per event`,
      baseline: '2.00 (one GET + one PUT)',
      value: `${callsPerEvent.toFixed(2)} (${timeouts} 504s; ${backlog.applied}/${backlog.events} applied, ${failed(backlog)}; first answer after ${seconds(backlog.firstAnswerMs)}, last after ${seconds(backlog.lastAnswerMs)})`,
      ratio: `${(callsPerEvent / 2).toFixed(2)}×`,
      goal: '≤ 2.05, no 504',
      met: callsPerEvent <= 2.05 && timeouts === 0 && backlog.applied === backlog.events,
    },
  ];
}
