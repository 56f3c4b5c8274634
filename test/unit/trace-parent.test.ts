import { describe, expect, it } from 'vitest';
import { parseTraceParent } from '../../shared/telemetry/telemetry.js';

describe('parseTraceParent', () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const spanId = '00f067aa0ba902b7';

  it.each(['01', '00'])('reads trace and parent span ids whatever the flags (%s)', (flags) => {
    expect(parseTraceParent(`00-${traceId}-${spanId}-${flags}`)).toEqual({ traceId, spanId });
  });

  it.each([
    undefined,
    null,
    '',
    `01-${traceId}-${spanId}-01`,
    `00-${traceId.toUpperCase()}-${spanId}-01`,
    `00-${'0'.repeat(32)}-${spanId}-01`,
    `00-${traceId}-${'0'.repeat(16)}-01`,
    `00-${traceId}-${spanId}`,
  ])('refuses %s', (value) => {
    expect(parseTraceParent(value)).toBeUndefined();
  });
});
