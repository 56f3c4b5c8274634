/**
 * Application Insights through `applicationinsights` v3 (Azure Monitor OpenTelemetry). Loaded by
 * ./telemetry.js only when a connection string is configured: this module is the heavy part.
 *
 * What it records, and only that (the Functions host already records each request):
 * - the Partner Center calls, as dependencies, through `@opentelemetry/instrumentation-undici` (the
 *   distro instruments `http`, not undici), each carrying the event's `MS-CorrelationId`, and made
 *   children of the host's request through the invocation's `traceparent`;
 * - one `ReferralUpdate` custom event per event with its dimensions (ids, outcome, counts, status);
 * - counters of updates applied / unchanged / rejected / failed, 412 re-merges, throttles, and a
 *   histogram of upstream latency.
 * The distro's own instrumentations are off: `http` would report every Azure SDK call (identity,
 * Key Vault with its refresh tokens, Table Storage) and the incoming requests the host already owns;
 * the others instrument libraries the app does not use. No field values, tokens or bodies are recorded.
 */
import type { TokenCredential } from '@azure/identity';
import {
  type Attributes,
  type Context,
  type Counter,
  context,
  createNoopMeter,
  metrics,
  ROOT_CONTEXT,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import applicationInsights from 'applicationinsights';
import { managedIdentityCredential } from '../auth/managed-identity.js';
import type { TelemetryConfig } from '../config.js';
import { CORRELATION_HEADER } from '../contract/headers.js';
import { VERSION } from '../version.js';
import type { EventRecord } from './event-record.js';
import { parseTraceParent, type StartedTelemetry } from './telemetry.js';

const SCOPE = 'partner-center-referral-webhook';
/** The exporter's attribute names for a custom event (`customEvents`) and its measurements. */
const CUSTOM_EVENT_NAME = 'microsoft.custom_event.name';
const CUSTOM_MEASUREMENTS = 'microsoft.custom_measurements';

export async function startAzureMonitor(config: TelemetryConfig): Promise<StartedTelemetry> {
  const credential: TokenCredential | undefined =
    config.ingestion.auth === 'entra' ? await managedIdentityCredential(config.ingestion.clientId) : undefined;
  applicationInsights.useAzureMonitor({
    azureMonitorExporterOptions: {
      connectionString: config.connectionString,
      ...(credential ? { credential } : {}),
      // No retry files: left on, the exporter keeps up to ~50 MB per signal in the temp directory while
      // ingestion is unreachable, on instances with little local disk (docs/telemetry.md#offline-storage).
      disableOfflineStorage: true,
    },
    // Every event matters at this volume; the host samples its own request telemetry (host.json).
    samplingRatio: 1,
    tracesPerSecond: 0,
    enableLiveMetrics: false,
    // Per-span work the app does not need: the host records the requests (and their standard metrics);
    // dependencies stay queryable, and the platform shows the process's CPU and memory (docs/telemetry.md).
    enableStandardMetrics: false,
    enablePerformanceCounters: false,
    instrumentationOptions: {
      http: { enabled: false },
      azureSdk: { enabled: false },
      mongoDb: { enabled: false },
      mySql: { enabled: false },
      postgreSql: { enabled: false },
      redis: { enabled: false },
      redis4: { enabled: false },
      bunyan: { enabled: false },
      winston: { enabled: false },
      console: { enabled: false },
    },
  });
  // Registered explicitly, after the providers exist: subscribes to undici's diagnostics channels,
  // so it works on a bundled undici too (no module patching).
  const undici = new UndiciInstrumentation({
    // The same `correlationId` dimension as the event's, so the two join in a query.
    startSpanHook: (request) => {
      const correlationId = headerValue(request.headers, CORRELATION_HEADER);
      return correlationId ? { correlationId } : {};
    },
  });
  // Its own `http.client.request.duration` histogram would duplicate `referral.upstream.duration` at a cost per
  // request (docs/telemetry.md): spans only.
  undici.setMeterProvider({ getMeter: () => createNoopMeter() });

  const meter = metrics.getMeter(SCOPE, VERSION);
  // One counter per outcome that counts as an update decision (dry runs, stale events and replays do not).
  const updates: Partial<Record<string, Counter>> = {
    updated: meter.createCounter('referral.updates.applied', { description: 'Events that changed a referral' }),
    unchanged: meter.createCounter('referral.updates.unchanged', {
      description: 'Events the referral already matched (no write)',
    }),
    rejected: meter.createCounter('referral.updates.rejected', {
      description: 'Events answered with a 4xx (invalid, not allowed, not found, …)',
    }),
    failed: meter.createCounter('referral.updates.failed', {
      description: 'Events answered with a 5xx (upstream or adapter failure, retryable or not)',
    }),
  };
  const conflicts = meter.createCounter('referral.upstream.precondition_failed', {
    description: '412/409 answers to a conditional PUT (each one re-read and re-merged)',
  });
  const throttles = meter.createCounter('referral.upstream.throttled', {
    description: '429 answers from Partner Center',
  });
  const latency = meter.createHistogram('referral.upstream.duration', {
    description: 'Duration of each Partner Center request',
    unit: 'ms',
  });
  const logger = logs.getLogger(SCOPE, VERSION);

  return {
    inInvocation(traceParent, work) {
      return context.with(invocationContext(traceParent), work);
    },
    recordEvent(record, upstreamDurationsMs) {
      // Telemetry never fails an event: the answer is already decided.
      try {
        emit(record, upstreamDurationsMs);
      } catch {
        // The SDK reports its own failures through its diagnostic log.
      }
    },
    recordLate({ record, upstreamDurationsMs, traceParent, timeMs }) {
      try {
        // The context the record would have been made in: the invocation's trace (or none).
        const parent = parseTraceParent(traceParent) ? invocationContext(traceParent) : ROOT_CONTEXT;
        context.with(parent, () => emit(record, upstreamDurationsMs, timeMs));
      } catch {
        // As above.
      }
    },
  };

  function emit(record: EventRecord, upstreamDurationsMs: readonly number[], timeMs?: number): void {
    const dimensions = dimensionsOf(record);
    updates[dimensions.outcome]?.add(1);
    if (record.conflicts > 0) conflicts.add(record.conflicts);
    if (record.throttles > 0) throttles.add(record.throttles);
    for (const ms of upstreamDurationsMs) latency.record(ms);
    logger.emit({
      ...(timeMs === undefined ? {} : { timestamp: timeMs }),
      body: 'ReferralUpdate',
      attributes: {
        [CUSTOM_EVENT_NAME]: 'ReferralUpdate',
        ...dimensions,
        [CUSTOM_MEASUREMENTS]: JSON.stringify({
          durationMs: record.durationMs,
          attempts: record.attempts,
          retries: record.retries,
          conflicts: record.conflicts,
          throttles: record.throttles,
        }),
      },
    });
  }
}

/** The custom event's dimensions: identifiers, outcome and statuses, never values. */
function dimensionsOf(record: EventRecord): Attributes & { outcome: string } {
  const outcome =
    record.idempotency === 'replayed'
      ? 'replayed'
      : record.status === 200
        ? (record.outcome ?? 'ok')
        : record.status === 202
          ? 'accepted'
          : record.status < 500
            ? 'rejected'
            : 'failed';
  const dimensions: Attributes & { outcome: string } = {
    outcome,
    correlationId: record.correlationId,
    status: String(record.status),
    idempotency: record.idempotency,
    attempts: String(record.attempts),
    upstreamStatus: record.upstreamStatus === null ? '' : String(record.upstreamStatus),
  };
  if (record.referralId !== undefined) dimensions.referralId = record.referralId;
  if (record.eventId !== undefined) dimensions.eventId = record.eventId;
  if (record.code !== undefined) dimensions.code = record.code;
  if (record.retryable !== undefined) dimensions.retryable = String(record.retryable);
  if (record.outcome !== undefined && outcome === 'replayed') dimensions.replayedOutcome = record.outcome;
  if (record.delivery !== undefined) {
    dimensions.deliveryAttempt = String(record.delivery.attempt);
    dimensions.deliveryState = record.delivery.state;
  }
  return dimensions;
}

/** A request header as undici's diagnostics channel shows it: `[name, value, …]` (v6+) or raw `name: value` lines. */
function headerValue(headers: string | (string | string[])[], name: string): string | undefined {
  const wanted = name.toLowerCase();
  if (typeof headers === 'string') {
    const line = headers.split('\r\n').find((l) => l.slice(0, l.indexOf(':')).trim().toLowerCase() === wanted);
    return line?.slice(line.indexOf(':') + 1).trim();
  }
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (String(headers[i]).toLowerCase() === wanted) return String(headers[i + 1]);
  }
  return undefined;
}

/** The host's W3C `traceparent` as the parent of everything the invocation does. */
function invocationContext(traceParent: string | null | undefined): Context {
  const parent = parseTraceParent(traceParent);
  if (!parent) return context.active();
  // Sampled whatever the host's flag says: the host's adaptive sampling may drop its request item, but the
  // app's dependencies and ReferralUpdate events are kept (logs in an unsampled trace would be dropped).
  return trace.setSpanContext(ROOT_CONTEXT, { ...parent, traceFlags: TraceFlags.SAMPLED, isRemote: true });
}
