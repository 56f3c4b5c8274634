import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, Deadline, parseRetryAfter } from '../../shared/core/retry.js';

describe('backoffDelay', () => {
  it('stays within [0, min(max, base·2^attempt)) for any random draw', () => {
    fc.assert(
      fc.property(fc.nat(30), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
        const delay = backoffDelay(attempt, { baseDelayMs: 100, maxDelayMs: 5000, random: () => r });
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(Math.min(5000, 100 * 2 ** attempt));
      }),
    );
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('57')).toBe(57_000);
    const now = Date.parse('2026-11-25T10:00:00Z');
    expect(parseRetryAfter('Wed, 25 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 09:00:00 GMT', now)).toBe(0);
  });

  it.each([undefined, null, '', 'soon', '-1', '1.5'])('ignores %j', (value) => {
    expect(parseRetryAfter(value)).toBeUndefined();
  });
});

describe('Deadline', () => {
  it('counts down to zero and not below', () => {
    const deadline = new Deadline(1000, 0);
    expect(deadline.remaining(400)).toBe(600);
    expect(deadline.remaining(5000)).toBe(0);
  });
});
