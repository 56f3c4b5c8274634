/** The six-field NCRONTAB evaluator the local host schedules timer triggers with. */
import { expect, it } from 'vitest';
import { timerSchedule } from '../../dev/host/host.js';
import { parseNcrontab } from '../../shared/core/ncrontab.js';

const next = (expression: string, after: string) => parseNcrontab(expression).next(new Date(after))?.toISOString();

it('every 12 hours: at 00:00:00 and 12:00:00 UTC, strictly after the given time', () => {
  expect(next('0 0 */12 * * *', '2026-11-26T17:17:28Z')).toBe('2026-11-27T00:00:00.000Z');
  expect(next('0 0 */12 * * *', '2026-11-27T00:00:00Z')).toBe('2026-11-27T12:00:00.000Z');
  expect(next('0 0 */12 * * *', '2026-11-26T23:59:59.999Z')).toBe('2026-11-27T00:00:00.000Z');
});

it('the examples of the Azure Functions timer documentation', () => {
  const after = '2026-11-26T17:17:28Z'; // a Thursday
  expect(next('0 */5 * * * *', after)).toBe('2026-11-26T17:20:00.000Z');
  expect(next('0 0 * * * *', after)).toBe('2026-11-26T18:00:00.000Z');
  expect(next('0 0 */2 * * *', after)).toBe('2026-11-26T18:00:00.000Z');
  expect(next('0 0 9-17 * * *', after)).toBe('2026-11-27T09:00:00.000Z');
  expect(next('0 30 9 * * *', after)).toBe('2026-11-27T09:30:00.000Z');
  expect(next('0 30 9 * * 1-5', after)).toBe('2026-11-27T09:30:00.000Z');
  expect(next('0 30 9 * Jan Mon', after)).toBe('2027-01-04T09:30:00.000Z');
  expect(next('5,8,10 * * * * *', after)).toBe('2026-11-26T17:18:05.000Z');
  expect(next('*/15 * * * * *', after)).toBe('2026-11-26T17:17:30.000Z');
});

it('crosses month and year ends, and skips months without the day', () => {
  expect(next('0 0 0 31 * *', '2026-11-26T00:00:00Z')).toBe('2026-12-31T00:00:00.000Z');
  expect(next('0 0 0 1 1 *', '2026-11-26T00:00:00Z')).toBe('2027-01-01T00:00:00.000Z');
  expect(next('0 0 0 29 2 *', '2026-11-26T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
  // Day and day of week both restricted: both must match (Friday the 13th).
  expect(next('0 0 0 13 * Fri', '2026-11-26T00:00:00Z')).toBe('2027-08-13T00:00:00.000Z');
});

it('returns nothing when no occurrence falls in the next five years', () => {
  expect(parseNcrontab('0 0 0 31 2 *').next(new Date('2026-01-01T00:00:00Z'))).toBeUndefined();
});

it('refuses what the Functions host would refuse, naming the problem', () => {
  expect(() => parseNcrontab('0 */12 * * *')).toThrow(/six fields/);
  expect(() => parseNcrontab('01:00:00')).toThrow(/six fields/);
  expect(() => parseNcrontab('60 * * * * *')).toThrow(/second 60 is outside 0-59/);
  expect(() => parseNcrontab('0 0 25 * * *')).toThrow(/hour 25/);
  expect(() => parseNcrontab('0 0 0 0 * *')).toThrow(/day 0/);
  expect(() => parseNcrontab('0 0 0 * 13 *')).toThrow(/month 13/);
  expect(() => parseNcrontab('0 0 0 * * 7')).toThrow(/day of week 7/);
  expect(() => parseNcrontab('0 */0 * * * *')).toThrow(/step/);
  expect(() => parseNcrontab('0 5-1 * * * *')).toThrow(/backwards/);
  expect(() => parseNcrontab('0 x * * * *')).toThrow(/not a valid minute/);
  expect(() => parseNcrontab('0 0 0 * Foo *')).toThrow(/not a valid month/);
});

it('the local host resolves a %SETTING% schedule from the environment, and refuses an unset or invalid one', () => {
  const timer = { name: 'keep-alive', schedule: '%RENEWAL%', handler: async () => {} };
  expect(timerSchedule(timer, { RENEWAL: '0 0 */12 * * *' }).expression).toBe('0 0 */12 * * *');
  expect(timerSchedule({ ...timer, schedule: '0 30 9 * * *' }, {}).expression).toBe('0 30 9 * * *');
  expect(() => timerSchedule(timer, {})).toThrow(`'%RENEWAL%' does not resolve to a value`);
  expect(() => timerSchedule(timer, { RENEWAL: '0 */12 * * *' })).toThrow(/invalid schedule: .*six fields/);
});
