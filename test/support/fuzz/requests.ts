/**
 * Everything of a fuzzed request but its body and signature (fast-check arbitraries): media types (with
 * whether the contract counts them as JSON), the other headers the app reads with hostile values, and
 * query strings.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Payload } from './bodies.js';

export interface MediaType {
  /** `undefined`: no Content-Type header at all. */
  value: string | undefined;
  /** Whether the contract counts it as JSON; `undefined` when the contract does not say. */
  json: boolean | undefined;
}

/** Header values fetch and Node's HTTP parser both carry: HTAB, visible ASCII, space, obs-text (0x80-0xFF). */
const headerChar = fc
  .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09))
  .map((code) => String.fromCharCode(code));
export const headerValue = (maxLength: number) => fc.string({ unit: headerChar, maxLength });
/** Up to 4 KiB: several of them stay under Node's 16 KiB header limit (a 431 there is the server's, not the app's). */
export const hugeHeaderValue = fc.oneof(
  fc
    .integer({ min: 1000, max: 4096 })
    .chain((n) => fc.constantFrom('a', '9', '%', '\xff', ',').map((c) => c.repeat(n))),
  fc.string({ unit: headerChar, minLength: 1000, maxLength: 4096 }),
);

export const mediaType: fc.Arbitrary<MediaType> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'Application/JSON',
        'application/json;charset=UTF-8',
        'application/merge-patch+json',
        'application/problem+json',
        'application/vnd.api+json',
      )
      .map((value) => ({ value, json: true })),
  },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        undefined,
        '',
        'text/plain',
        'text/plain; charset=utf-8',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/jsonx',
        'application/json; charset=latin1',
        'application/json5',
        'application/xml',
        'application/octet-stream',
        'text/html',
        'json',
        'application/',
        '*/*',
      )
      .map((value) => ({ value, json: false })),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.constantFrom('text/json', 'application/x-json', 'application/json, text/plain', 'application/json\t;x'),
        headerValue(80),
      )
      .map((value) => ({ value, json: undefined })),
  },
);

export type HeaderList = ReadonlyArray<readonly [string, string]>;

/** Headers the app reads (besides the signature ones), with hostile values; names may repeat. */
export const otherHeaders: fc.Arbitrary<HeaderList> = fc.array(
  fc.tuple(
    fc.constantFrom('webhook-id', 'idempotency-key', 'ms-correlationid', 'x-functions-key', 'webhook-timestamp'),
    fc.oneof(
      headerValue(60),
      hugeHeaderValue,
      fc.constantFrom('""', '"', randomUUID(), ` ${randomUUID()}x`, 'x'.repeat(257), '../../x'),
    ),
  ),
  { maxLength: 3 },
);

export const query: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.constantFrom(
        '?dryRun=true',
        '?dryRun=',
        '?dryRun=maybe',
        '?dryRun=%00',
        '?dryRun=true&dryRun=false',
        '?code=x',
        '?dryRun=%E2%80%AE',
        '?%ff=1',
      ),
      fc.string({ unit: 'binary', maxLength: 40 }).map((value) => `?dryRun=${encodeURIComponent(value)}`),
    ),
  },
);

export interface Shot {
  payload: Payload;
  media: MediaType;
  headers: HeaderList;
  query: string;
  /** Sent as a stream (chunked, no Content-Length) instead of a sized body. */
  chunked: boolean;
}
