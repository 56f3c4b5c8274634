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

export interface EventSummary {
  correlationId: string;
  referralId: string | undefined;
  eventId: string | undefined;
  /** `replayed`: answered from the idempotency store; `new`: first delivery of an event id; `none`: no id. */
  idempotency: 'none' | 'new' | 'replayed';
  stats: UpdateStats;
  durationMs: number;
}

export function logEventSummary(
  logger: EventLogger,
  summary: EventSummary,
  result: { ok: UpdateResult } | { error: AdapterError },
): void {
  const { stats, ...ids } = summary;
  const line = {
    event: 'referral-update',
    ...ids,
    durationMs: Math.round(summary.durationMs),
    upstreamCalls: stats.upstreamCalls,
    retries: stats.retries,
    conflicts: stats.conflicts,
    upstreamStatus: stats.lastUpstreamStatus ?? null,
    ...('ok' in result
      ? { status: 200, outcome: result.ok.outcome, changedPaths: result.ok.changes.map((c) => c.path) }
      : {
          status: result.error.status,
          code: result.error.code,
          retryable: result.error.retryable,
          ...(result.error.logCode ? { logCode: result.error.logCode } : {}),
        }),
  };
  if ('ok' in result || result.error.status < 500) {
    logger.log(JSON.stringify(line));
    return;
  }
  const cause = result.error.code === 'internal_error' ? result.error.cause : undefined;
  const stack = cause instanceof Error ? { errorName: cause.name, stack: stackFrames(cause) } : {};
  logger.error(JSON.stringify({ ...line, ...stack }));
}

/** Stack frames without the message line, which could quote data. */
function stackFrames(error: Error): string[] {
  return (error.stack ?? '')
    .split('\n')
    .slice(1, 8)
    .map((frame) => frame.trim());
}
