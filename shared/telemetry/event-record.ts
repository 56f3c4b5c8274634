/**
 * One structured summary line per event. Identifiers, outcome, counts and field paths only: never
 * field values, tokens or upstream bodies (customer names, e-mails and notes live there).
 */
import type { AdapterError } from '../core/errors.js';
import type { UpdateResult } from '../core/update.js';

/** Filled in while the event runs, for the summary log line; valid after a throw too. */
export interface UpdateStats {
  upstreamCalls: number;
  retries: number;
  conflicts: number;
  /** 429 answers from Partner Center. */
  throttles: number;
  /** How long each upstream HTTP exchange took, in order. */
  upstreamDurationsMs: number[];
  lastUpstreamStatus: number | undefined;
}

export function newStats(): UpdateStats {
  return {
    upstreamCalls: 0,
    retries: 0,
    conflicts: 0,
    throttles: 0,
    upstreamDurationsMs: [],
    lastUpstreamStatus: undefined,
  };
}

export interface EventLogger {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** `replayed`: answered from the idempotency store; `new`: first delivery of an event id; `none`: no id. */
export type IdempotencyUse = 'none' | 'new' | 'replayed';

/**
 * What the event came to: a result, an error, an answer replayed from the idempotency store, or accepted
 * for asynchronous delivery (`202`; its outcome comes later, from the queue worker).
 */
export type EventOutcome =
  | { ok: UpdateResult }
  | { error: AdapterError }
  | { replayed: { status: number; body: string } }
  | { accepted: { status: 202 } };

export interface EventSummary {
  correlationId: string;
  referralId: string | undefined;
  eventId: string | undefined;
  idempotency: IdempotencyUse;
  stats: UpdateStats;
  durationMs: number;
}

/**
 * What one event came to, as identifiers, counts and field paths: the structured log line and the
 * telemetry event are both made from it. Never field values, tokens or upstream bodies.
 */
export interface EventRecord {
  event: 'referral-update';
  correlationId: string;
  referralId: string | undefined;
  eventId: string | undefined;
  idempotency: IdempotencyUse;
  durationMs: number;
  /** Upstream requests made for the event (GETs and PUTs). */
  attempts: number;
  retries: number;
  /** 412/409 answers to our PUTs (each one a re-read and re-merge). */
  conflicts: number;
  /** 429 answers from Partner Center. */
  throttles: number;
  upstreamStatus: number | null;
  /** The HTTP status of the answer. */
  status: number;
  /** The 200 outcome (`updated`, `unchanged`, `dry-run`, `stale`), also of a replayed answer; `accepted` for a 202. */
  outcome?: string;
  code?: string;
  retryable?: boolean;
  logCode?: string;
  changedPaths?: string[];
  /** An attempt of the queue worker (docs/async-delivery.md): which one, and the state it left the event in. */
  delivery?: DeliveryAttempt;
}

/** One attempt at a queued event, for its summary line: counts and states only. */
export interface DeliveryAttempt {
  attempt: number;
  /** The state the attempt left the event in (`succeeded`, `failed`, `retrying`, `dead_lettered`). */
  state: string;
  /** retrying: the seconds until the next attempt. */
  retryInSeconds?: number;
}

export function eventRecord(summary: EventSummary, result: EventOutcome): EventRecord {
  const { stats } = summary;
  // Named one by one (no rest/spread of the summary): this runs once per event (docs/performance-analysis.md).
  const record: EventRecord = {
    event: 'referral-update',
    correlationId: summary.correlationId,
    referralId: summary.referralId,
    eventId: summary.eventId,
    idempotency: summary.idempotency,
    durationMs: Math.round(summary.durationMs),
    attempts: stats.upstreamCalls,
    retries: stats.retries,
    conflicts: stats.conflicts,
    throttles: stats.throttles,
    upstreamStatus: stats.lastUpstreamStatus ?? null,
    status: 0,
  };
  if ('accepted' in result) {
    record.status = result.accepted.status;
    record.outcome = 'accepted';
  } else if ('replayed' in result) {
    record.status = result.replayed.status;
    const { outcome, code } = replayedFields(result.replayed.body);
    if (outcome !== undefined) record.outcome = outcome;
    if (code !== undefined) record.code = code;
  } else if ('ok' in result) {
    const { outcome, changes } = result.ok;
    record.status = 200;
    record.outcome = outcome;
    record.changedPaths = changes.map((c) => c.path);
  } else {
    const { error } = result;
    record.status = error.status;
    record.code = error.code;
    record.retryable = error.retryable;
    if (error.logCode) record.logCode = error.logCode;
  }
  return record;
}

/** The record as one JSON line; a 5xx goes to the error log, with the stack of an unexpected failure. */
export function logEvent(logger: EventLogger, record: EventRecord, result: EventOutcome): void {
  if (record.status < 500) {
    logger.log(JSON.stringify(record));
    return;
  }
  const cause = 'error' in result && result.error.code === 'internal_error' ? result.error.cause : undefined;
  const stack = cause instanceof Error ? { errorName: cause.name, stack: stackFrames(cause) } : {};
  logger.error(JSON.stringify({ ...record, ...stack }));
}

/** The outcome or error code of a stored answer, for the log line of its replay. */
function replayedFields(body: string): { outcome?: string; code?: string } {
  try {
    const parsed = JSON.parse(body) as { outcome?: unknown; code?: unknown };
    return {
      ...(typeof parsed.outcome === 'string' ? { outcome: parsed.outcome } : {}),
      ...(typeof parsed.code === 'string' ? { code: parsed.code } : {}),
    };
  } catch {
    return {};
  }
}

/** Stack frames without the message line, which could quote data. */
function stackFrames(error: Error): string[] {
  return (error.stack ?? '')
    .split('\n')
    .slice(1, 8)
    .map((frame) => frame.trim());
}
