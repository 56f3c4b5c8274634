/**
 * The reliability run's figures (pure): the document test/integration/reliability.test.ts writes to
 * test-results/reliability.json, which scripts/reliability-report.mjs reads for docs/reliability.md.
 */
import { RANDOM_FAULT_KINDS } from '../../../dev/sandbox/server.js';
import { FAST_RETRY_ENV } from '../stack.js';
import { bump } from './answers.js';
import type { Run } from './driver.js';
import type { End } from './final-checks.js';
import { isRecord } from './model.js';
import {
  APP_SETTINGS,
  CALLER_RETRIES,
  CALLER_RETRY_DELAY_MS,
  FAULT_RATE,
  IN_FLIGHT,
  MAX_UNRESOLVED_EVENTS,
} from './parameters.js';

/**
 * The figures of a run, its end's figures and its times (wall: from the sandbox reset to the end's checks), under
 * the app's write method (`PARTNER_CENTER_WRITE_METHOD`).
 */
export function reliabilityReport(
  run: Run,
  end: End,
  time: { startupMs: number; wallMs: number; writeMethod: 'put' | 'patch' },
) {
  const { seed, events, figures, stats, driverMs } = run;
  const { counts, all: violations } = run.violations;
  const { finalOutcomes, unresolvedFields } = end;
  const { startupMs, wallMs } = time;
  const totalDeliveries = Object.values(figures.deliveries).reduce((a, b) => a + b, 0);
  const eventsByKind: Record<string, number> = {};
  for (const event of events) bump(eventsByKind, event.kind);
  return {
    suite: 'reliability',
    file: 'test/integration/reliability.test.ts',
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    seed,
    writeMethod: time.writeMethod,
    faults: { rate: FAULT_RATE, kinds: [...RANDOM_FAULT_KINDS], maxLatencyMs: 50 },
    settings: {
      inFlight: IN_FLIGHT,
      callerRetries: CALLER_RETRIES,
      callerRetryDelayMs: CALLER_RETRY_DELAY_MS,
      upstreamBudgetMs: Number(APP_SETTINGS.UPSTREAM_BUDGET_MS),
      upstreamMaxRetries: Number(APP_SETTINGS.UPSTREAM_MAX_RETRIES),
      concurrencyMaxRetries: Number(APP_SETTINGS.CONCURRENCY_MAX_RETRIES),
      requestTimeoutMs: Number(FAST_RETRY_ENV.UPSTREAM_REQUEST_TIMEOUT_MS),
      retryBaseDelayMs: Number(FAST_RETRY_ENV.RETRY_BASE_DELAY_MS),
      retryMaxDelayMs: Number(FAST_RETRY_ENV.RETRY_MAX_DELAY_MS),
      idempotencyStore: 'table (Azurite)',
    },
    referrals: run.referralIds.length,
    events: events.length,
    eventsByKind,
    deliveries: {
      total: totalDeliveries,
      first: figures.deliveries.first,
      concurrentDuplicates: figures.deliveries.copy,
      laterRedeliveries: figures.deliveries.redelivery,
      reusedIdDifferentBody: figures.deliveries.reuse,
      reusedIdSkipped: figures.reusesSkipped,
      httpRequests: figures.httpRequests,
      callerRetries: figures.callerRetries,
      failedAfterCallerRetries: figures.deliveriesFailedAfterRetries,
    },
    answers: {
      byStatus: figures.answersByStatus,
      byOutcomeOrCode: figures.answersByOutcome,
      replayed: figures.replayed,
      retryable5xx: figures.retryable5xxAnswers,
    },
    finalOutcomes,
    sandbox: {
      requests: stats.requests,
      puts: stats.puts,
      appliedPuts: stats.appliedPuts,
      patches: stats.patches,
      appliedPatches: stats.appliedPatches,
      rejected412: stats.rejected412,
      faults: stats.faults,
      faultsByKind: stats.faultsByKind,
      externalEdits: Object.values(stats.externalEdits).reduce((a, b) => a + b, 0),
    },
    results: {
      lostUpdates: counts.lost,
      doubleApplications: counts.doubled,
      fieldsLost: counts.fieldsLost,
      responses5xx: counts.responses5xx,
      wrongAnswers: counts.wrongAnswer,
      replayMismatches: counts.replayMismatch,
      notProblemJson: counts.problemJson,
      noAnswer: counts.noAnswer,
      unresolvedEvents: figures.unresolvedEvents,
      unresolvedAllowed: MAX_UNRESOLVED_EVENTS,
      unresolvedFields,
      violations: violations.length,
    },
    timeMs: { total: Math.round(wallMs + startupMs), startup: Math.round(startupMs), driver: Math.round(driverMs) },
    passed: violations.length === 0,
    violationSamples: violations.slice(0, 50),
  };
}

/**
 * JSON laid out the way the project's formatter (Biome) lays it out, so `npm run check` stays clean when
 * test-results/ is on disk: objects one key per line, arrays on one line when they fit in 120 columns.
 */
export function formatJson(value: unknown, indent = '', column = 0): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const items = value.map((item) => formatJson(item, inner, inner.length));
    const flat = `[${items.join(', ')}]`;
    if (!flat.includes('\n') && column + flat.length + 1 <= 120) return flat;
    return `[\n${items.map((item) => `${inner}${item}`).join(',\n')}\n${indent}]`;
  }
  if (isRecord(value)) {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return '{}';
    const lines = entries.map(([key, item]) => {
      const prefix = `${inner}${JSON.stringify(key)}: `;
      return `${prefix}${formatJson(item, inner, prefix.length)}`;
    });
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
