/**
 * Telemetry, as the rest of the app sees it: run an invocation inside its trace context, record one
 * event summary. Light on purpose: with `APPLICATIONINSIGHTS_CONNECTION_STRING` unset this is a no-op and
 * nothing of Application Insights or OpenTelemetry is imported; with it set, ./azure-monitor.js (the
 * heavy part) loads once, on the first call of {@link startTelemetry}.
 */
import type { TelemetryConfig } from '../config.js';
import type { EventRecord } from './event-record.js';

export interface Telemetry {
  /**
   * Runs `work` as part of the invocation whose W3C `traceparent` the host passed (InvocationContext
   * `traceContext`): upstream calls made inside become dependencies of the host's request.
   */
  inInvocation<T>(traceParent: string | null | undefined, work: () => Promise<T>): Promise<T>;
  /** One custom event (`ReferralUpdate`) with the event's dimensions, and the metrics it moves. */
  recordEvent(record: EventRecord, upstreamDurationsMs: readonly number[]): void;
}

const NO_TELEMETRY: Telemetry = {
  inInvocation: (_traceParent, work) => work(),
  recordEvent: () => {},
};

/** `off`: not configured; `failed`: configured, but the SDK did not start (the app runs without telemetry). */
export type TelemetryStatus = 'off' | 'starting' | 'on' | 'failed';

let started: Promise<Telemetry> | undefined;
let status: TelemetryStatus = 'off';

/** For /api/health; starts nothing. */
export function telemetryStatus(): TelemetryStatus {
  return status;
}

/**
 * Starts telemetry when it is configured (once per process: the first call's settings win) and resolves with it; a failure to start
 * is reported once and leaves the app running without telemetry.
 */
export function startTelemetry(
  config: TelemetryConfig | undefined,
  log: (message: string) => void = console.error,
): Promise<Telemetry> {
  started ??= start(config, log);
  return started;
}

async function start(config: TelemetryConfig | undefined, log: (message: string) => void): Promise<Telemetry> {
  if (!config) return NO_TELEMETRY;
  status = 'starting';
  try {
    const { startAzureMonitor } = await import('./azure-monitor.js');
    const telemetry = await startAzureMonitor(config);
    status = 'on';
    return telemetry;
  } catch (error) {
    status = 'failed';
    // The name only: SDK messages can quote the connection string.
    log(`partner-center-referral-webhook: telemetry is off, Application Insights failed to start (${nameOf(error)})`);
    return NO_TELEMETRY;
  }
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/** The trace and parent span of a W3C `traceparent` (version 00); undefined when absent or invalid. */
export function parseTraceParent(value: string | null | undefined): { traceId: string; spanId: string } | undefined {
  const match = value ? TRACEPARENT.exec(value.trim()) : null;
  if (!match) return undefined;
  const [, traceId, spanId] = match as unknown as [string, string, string];
  return /^0+$/.test(traceId) || /^0+$/.test(spanId) ? undefined : { traceId, spanId };
}

function nameOf(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
