/**
 * Telemetry, as the rest of the app sees it: run an invocation inside its trace context, record one
 * event summary. Light on purpose: with `APPLICATIONINSIGHTS_CONNECTION_STRING` unset this is a no-op and
 * nothing of Application Insights or OpenTelemetry is imported; with it set, ./azure-monitor.js (the
 * heavy part) loads once, in the background, and no event waits for it (docs/telemetry.md#start-up).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
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

/** A record made before Application Insights was ready, kept until it is (docs/telemetry.md#start-up). */
export interface PendingRecord {
  record: EventRecord;
  upstreamDurationsMs: readonly number[];
  /** The invocation's `traceparent`, so the record joins the trace it would have joined. */
  traceParent: string | null | undefined;
  /** When it was recorded (epoch ms): the time the custom event carries. */
  timeMs: number;
}

/** Telemetry once the SDK is up: what events use, plus the way in for records kept while it started. */
export interface StartedTelemetry extends Telemetry {
  /** Emits a record in the trace of its invocation, with the time it was made. */
  recordLate(pending: PendingRecord): void;
}

/** `off`: not configured; `failed`: configured, but the SDK did not start (the app runs without telemetry). */
export type TelemetryStatus = 'off' | 'starting' | 'on' | 'failed';

/** What happened to the records made before the SDK was ready. */
export interface PendingCounts {
  /** Kept, waiting for the SDK. */
  pending: number;
  /** Emitted once it was ready. */
  flushed: number;
  /** Dropped: over {@link PENDING_LIMIT}, or the SDK failed to start. */
  dropped: number;
}

/** At most this many records wait for the SDK; more are dropped and counted (docs/telemetry.md#start-up). */
export const PENDING_LIMIT = 1_000;
/** After load, the SDK starts at the first moment no event is in flight, past this grace… */
const START_GRACE_MS = 250;
/** …and at the latest this long after load, busy or not. */
const START_LATEST_MS = 10_000;

export interface TelemetryStarter {
  /** The telemetry an event uses now: never waits (records are kept while the SDK starts). */
  current(): Telemetry;
  /** Starts the SDK when the instance is idle (see {@link START_GRACE_MS}); returns at once. */
  startInBackground(): void;
  /** Starts the SDK now (if not yet) and resolves once it is ready, or failed. */
  ready(): Promise<Telemetry>;
  status(): TelemetryStatus;
  counts(): PendingCounts;
}

/**
 * Application Insights off the events' path: loading the SDK is a few hundred milliseconds of the one
 * JavaScript thread, so it begins when no event is in flight; events that run before it is ready are
 * answered at once and their records kept (bounded), then emitted in their own trace when it is.
 */
export function createTelemetryStarter(
  load: (() => Promise<StartedTelemetry>) | undefined,
  log: (message: string) => void = console.error,
  timing: { graceMs: number; latestMs: number } = { graceMs: START_GRACE_MS, latestMs: START_LATEST_MS },
): TelemetryStarter {
  let status: TelemetryStatus = load ? 'starting' : 'off';
  let started: Promise<Telemetry> | undefined;
  let telemetry: StartedTelemetry | undefined;
  let pending: PendingRecord[] = [];
  const counts = { flushed: 0, dropped: 0 };
  let inFlight = 0;
  let graceOver = false;
  let scheduled = false;
  // The invocation a record belongs to, while the SDK (and its context manager) is not there yet.
  const invocation = new AsyncLocalStorage<string | null | undefined>();

  function ready(): Promise<Telemetry> {
    if (!load) return Promise.resolve(NO_TELEMETRY);
    started ??= load().then(
      (sdk) => {
        telemetry = sdk;
        status = 'on';
        for (const record of pending) sdk.recordLate(record);
        counts.flushed += pending.length;
        pending = [];
        return sdk;
      },
      (error: unknown) => {
        status = 'failed';
        counts.dropped += pending.length;
        const dropped = counts.dropped;
        pending = [];
        // The name only: SDK messages can quote the connection string.
        log(
          `partner-center-referral-webhook: telemetry is off, Application Insights failed to start (${nameOf(error)}); ${dropped} event record(s) dropped`,
        );
        return NO_TELEMETRY;
      },
    );
    return started;
  }

  function startIfIdle(): void {
    if (!started && graceOver && inFlight === 0) setImmediate(() => void ready());
  }

  const buffering: Telemetry = {
    async inInvocation(traceParent, work) {
      inFlight++;
      try {
        return await invocation.run(traceParent, work);
      } finally {
        inFlight--;
        startIfIdle();
      }
    },
    recordEvent(record, upstreamDurationsMs) {
      const late: PendingRecord = {
        record,
        upstreamDurationsMs,
        traceParent: invocation.getStore(),
        timeMs: Date.now(),
      };
      if (telemetry) telemetry.recordLate(late);
      else if (status === 'failed') counts.dropped++;
      else if (pending.length >= PENDING_LIMIT) counts.dropped++;
      else pending.push(late);
    },
  };

  function startInBackground(): void {
    if (!load || scheduled) return;
    scheduled = true;
    // Unref'd: a process with nothing else to do need not stay up to start telemetry.
    setTimeout(() => {
      graceOver = true;
      startIfIdle();
    }, timing.graceMs).unref();
    setTimeout(() => void ready(), timing.latestMs).unref();
  }

  return {
    current() {
      if (!load || status === 'failed') return NO_TELEMETRY;
      if (telemetry) return telemetry;
      startInBackground();
      return buffering;
    },
    startInBackground,
    ready,
    status: () => status,
    counts: () => ({ pending: pending.length, ...counts }),
  };
}

let starter: TelemetryStarter | undefined;

/** This process's telemetry (the first call's settings win). */
export function telemetryStarter(
  config: TelemetryConfig | undefined,
  log: (message: string) => void = console.error,
): TelemetryStarter {
  starter ??= createTelemetryStarter(
    config ? async () => (await import('./azure-monitor.js')).startAzureMonitor(config) : undefined,
    log,
  );
  return starter;
}

/** For /api/health; starts nothing. */
export function telemetryStatus(): TelemetryStatus {
  return starter?.status() ?? 'off';
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
