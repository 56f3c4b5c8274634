/**
 * The write loop's upstream call context (shared/use-cases/write-loop.ts): admission serves the oldest event first
 * (docs/behaviour.md#admission-to-partner-center), so every call of an event, its claimed PUT included, carries
 * the event's start, and a batch carries its oldest event's.
 */
import { describe, expect, it } from 'vitest';
import { AdapterError } from '../../shared/core/errors.js';
import { Deadline } from '../../shared/core/retry.js';
import { newStats } from '../../shared/telemetry/event-record.js';
import { writeLoop } from '../../shared/use-cases/write-loop.js';
import { testConfig } from '../support/use-cases.js';

const retry = testConfig().retry;

function loopStartedAgo(ms: number) {
  const now = Date.now();
  return writeLoop({
    referralId: 'ref-0001',
    retry,
    stats: newStats(),
    deadline: new Deadline(retry.budgetMs - ms, now),
    correlationId: '00000000-0000-4000-8000-000000000001',
    budgetRanOut: () => new AdapterError('upstream_timeout', 'out of time'),
  });
}

describe('requestContext', () => {
  it("every call of an event, the claimed PUT too, carries the event's start; an older event's is earlier", () => {
    const older = loopStartedAgo(5_000);
    const newer = loopStartedAgo(1_000);
    const read = older.requestContext();
    const claimedPut = older.requestContext(Date.now() + 2_000);

    expect(claimedPut.since).toBe(read.since);
    expect(newer.requestContext().since).toBeGreaterThan(read.since as number);
    expect((newer.requestContext().since as number) - (read.since as number)).toBeGreaterThanOrEqual(3_900);
  });
});
