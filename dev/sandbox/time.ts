import { hrtime } from 'node:process';

/**
 * Now as the service writes it: UTC with 7 fractional digits
 * (`2018-11-06T18:43:38.9948636Z`, docs/partner-center-api.md#wire-format). The digits past the
 * millisecond come from the high-resolution clock so they are not always zero:
 * an app that round-trips dates through `Date` loses them, which tests can see.
 */
export function utcNow7(date: Date = new Date()): string {
  const iso = date.toISOString(); // e.g. 2026-11-02T09:15:00.123Z
  const subMillisecond = String(hrtime.bigint() % 10_000n).padStart(4, '0');
  return `${iso.slice(0, -1)}${subMillisecond}Z`;
}
