/**
 * One structured summary line per event. Identifiers, outcome, counts and field paths only: never
 * field values, tokens or upstream bodies (customer names, e-mails and notes live there).
 */
import type { AdapterError } from './errors.js';
import type { UpdateResult, UpdateStats } from './update-referral.js';

export interface EventLogger {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** `replayed`: answered from the idempotency store; `new`: first delivery of an event id; `none`: no id. */
export type IdempotencyUse = 'none' | 'new' | 'replayed';

/** What the event came to: a result, an error, or an answer replayed from the idempotency store. */
export type EventOutcome =
  | { ok: UpdateResult }
  | { error: AdapterError }
  | { replayed: { status: number; body: string } };

export interface EventSummary {
  correlationId: string;
  referralId: string | undefined;
  eventId: string | undefined;
  idempotency: IdempotencyUse;
  stats: UpdateStats;
  durationMs: number;
}

export function logEventSummary(logger: EventLogger, summary: EventSummary, result: EventOutcome): void {
  const { stats, ...ids } = summary;
  const base = {
    event: 'referral-update',
    ...ids,
    durationMs: Math.round(summary.durationMs),
    // Upstream requests made for the event (GETs and PUTs).
    attempts: stats.upstreamCalls,
    retries: stats.retries,
    conflicts: stats.conflicts,
    upstreamStatus: stats.lastUpstreamStatus ?? null,
  };
  if ('replayed' in result) {
    logger.log(JSON.stringify({ ...base, status: result.replayed.status, ...replayedFields(result.replayed.body) }));
    return;
  }
  if ('ok' in result) {
    const { outcome, changes } = result.ok;
    logger.log(JSON.stringify({ ...base, status: 200, outcome, changedPaths: changes.map((c) => c.path) }));
    return;
  }
  const { error } = result;
  const line = {
    ...base,
    status: error.status,
    code: error.code,
    retryable: error.retryable,
    ...(error.logCode ? { logCode: error.logCode } : {}),
  };
  if (error.status < 500) {
    logger.log(JSON.stringify(line));
    return;
  }
  const cause = error.code === 'internal_error' ? error.cause : undefined;
  const stack = cause instanceof Error ? { errorName: cause.name, stack: stackFrames(cause) } : {};
  logger.error(JSON.stringify({ ...line, ...stack }));
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
