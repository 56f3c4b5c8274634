/**
 * Standard Webhooks signing for the signed fuzz suite (fast-check arbitraries): a secret for the app and
 * another one, timestamps (good, absent, malformed, too far off), webhook ids, and signature headers that
 * sign the request or match nothing (junk, wrong secret, over something else, wrong version, spoiled bytes).
 */
import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { type Bytes, bytesOf, type Payload } from './bodies.js';
import { headerValue, hugeHeaderValue, type MediaType, type Shot } from './requests.js';

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;
/** The secret the signed suite configures (WEBHOOK_SECRETS), new each run. */
export const SECRET = newSecret();
const OTHER_SECRET = newSecret();
export const nowSeconds = () => Math.floor(Date.now() / 1000);
/** What the server sees of a header value: fetch and Node drop the spaces and tabs around it. */
const trimOws = (value: string) => value.replace(/^[\t ]+|[\t ]+$/g, '');

/** HMAC-SHA256 over `id.timestamp.body` (raw bytes), keyed with the decoded secret: Standard Webhooks v1. */
export function hmac(secret: string, id: string, timestamp: string, body: Bytes): string {
  return createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest('base64');
}

/** A timestamp relative to the moment of sending, a fixed text, or no header. */
type Timestamp = { offset: number } | { raw: string } | 'missing';

const resolveTimestamp = (timestamp: Timestamp): string | undefined =>
  timestamp === 'missing' ? undefined : 'raw' in timestamp ? timestamp.raw : String(nowSeconds() + timestamp.offset);

/** Timestamps the receiver must refuse whatever the signature: absent, not Unix seconds, or over 5 minutes off. */
const badTimestamp: fc.Arbitrary<Timestamp> = fc.oneof(
  fc.constant<Timestamp>('missing'),
  fc
    .constantFrom(
      '',
      'abc',
      'now',
      '1e9',
      '0x6553f100',
      '12.5',
      '-1',
      '0',
      '999999999999',
      '9999999999999',
      '99999999999999999999',
      '¹²³',
      'NaN',
      'Infinity',
    )
    .map((raw): Timestamp => ({ raw })),
  fc
    .oneof(fc.integer({ min: 310, max: 1_000_000_000 }), fc.integer({ min: -1_000_000_000, max: -310 }))
    .map((offset): Timestamp => ({ offset })),
  fc
    .constantFrom(
      (now: number) => `-${now}`,
      (now: number) => `+${now}`,
      (now: number) => `${now}.0`,
      (now: number) => `${now}e0`,
    )
    .map((format): Timestamp => ({ raw: format(nowSeconds()) })),
);

const anyTimestamp: fc.Arbitrary<Timestamp> = fc.oneof(
  fc.integer({ min: -240, max: 240 }).map((offset): Timestamp => ({ offset })),
  badTimestamp,
  headerValue(30).map((raw): Timestamp => ({ raw })),
);

const goodId = fc
  .string({ unit: fc.constantFrom(...'abcdef0123456789'), minLength: 8, maxLength: 24 })
  .map((hex) => `msg_${hex}`);
const anyId: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 4, arbitrary: goodId },
  { weight: 1, arbitrary: fc.constantFrom(undefined, '') },
  { weight: 1, arbitrary: headerValue(60) },
  { weight: 1, arbitrary: hugeHeaderValue },
);

/** Entries a signature list may carry besides a good one; none matches. */
const junkEntry = fc.oneof(
  fc.constantFrom('v1a,abc', 'v2,xyz', 'v1,', 'v1', ','),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => `v1,${Buffer.from(bytes).toString('base64')}`),
);

/**
 * What goes in `webhook-signature`. `right`: the correct v1 HMAC for the request as sent, among junk
 * entries. The others match no configured secret for this request: absent, junk text, or a well-formed
 * HMAC with the wrong secret, over something else (`over`), with a wrong version or spoiled bytes.
 */
type Signature =
  | { kind: 'right'; before: string[]; after: string[] }
  | { kind: 'missing' }
  | { kind: 'raw'; value: string }
  | {
      kind: 'hmac';
      secret: 'other' | 'right';
      over: 'this' | 'other body' | 'other id' | 'other timestamp';
      version: string;
      mangle: 'none' | 'truncate' | 'flip' | 'pad';
    };

const rightSignature: fc.Arbitrary<Signature> = fc
  .record({ before: fc.array(junkEntry, { maxLength: 3 }), after: fc.array(junkEntry, { maxLength: 3 }) })
  .map(({ before, after }): Signature => ({ kind: 'right', before, after }));

const badSignature: fc.Arbitrary<Signature> = fc.oneof(
  fc.constant<Signature>({ kind: 'missing' }),
  fc
    .oneof(
      fc.constantFrom(
        '',
        'v1',
        'v1,',
        ',',
        'v1,,',
        ' , ',
        'v1, v1,',
        'v1,=',
        'v1,====',
        'v1,!!!!',
        'v1a,abc',
        'v2,',
        'v1 v1 v1',
      ),
      fc
        .nat({ max: 64 })
        .filter((length) => length !== 32)
        .chain((length) => fc.uint8Array({ minLength: length, maxLength: length }))
        .map((bytes) => `v1,${Buffer.from(bytes).toString('base64')}`),
      fc.array(junkEntry, { minLength: 1, maxLength: 40 }).map((entries) => entries.join(' ')),
      headerValue(200),
      hugeHeaderValue,
    )
    .map((value): Signature => ({ kind: 'raw', value })),
  fc
    .record({
      secret: fc.constantFrom('other' as const, 'right' as const),
      over: fc.constantFrom('this' as const, 'other body' as const, 'other id' as const, 'other timestamp' as const),
      version: fc.constantFrom('v1', 'V1', 'v1a', 'v2', 'v0', 'v11', ''),
      mangle: fc.constantFrom('none' as const, 'truncate' as const, 'flip' as const, 'pad' as const),
    })
    .filter((s) => s.secret === 'other' || s.over !== 'this' || s.version !== 'v1' || s.mangle !== 'none')
    .map((s): Signature => ({ kind: 'hmac', ...s })),
);

function signatureHeader(signature: Signature, id: string, timestamp: string, body: Bytes): string | undefined {
  switch (signature.kind) {
    case 'missing':
      return undefined;
    case 'raw':
      return signature.value;
    case 'right':
      return [...signature.before, `v1,${hmac(SECRET, id, timestamp, body)}`, ...signature.after].join(' ');
  }
  const secret = signature.secret === 'right' ? SECRET : OTHER_SECRET;
  const mac = (() => {
    switch (signature.over) {
      case 'this':
        return hmac(secret, id, timestamp, body);
      case 'other body':
        return hmac(secret, id, timestamp, bytesOf(body, ' '));
      case 'other id':
        return hmac(secret, `${id}x`, timestamp, body);
      default:
        return hmac(secret, id, `${timestamp}1`, body);
    }
  })();
  const raw = Buffer.from(mac, 'base64');
  const spoiled = (() => {
    switch (signature.mangle) {
      case 'truncate':
        return raw.subarray(0, 31).toString('base64');
      case 'flip':
        raw[0] = (raw[0] ?? 0) ^ 1;
        return raw.toString('base64');
      case 'pad':
        return Buffer.concat([raw, Buffer.from([0])]).toString('base64');
      default:
        return mac;
    }
  })();
  return signature.version === '' ? spoiled : `${signature.version},${spoiled}`;
}

export interface Signing {
  id: string | undefined;
  timestamp: Timestamp;
  signature: Signature;
}

/** Signing headers the receiver must refuse: a signature matching nothing, or the right one with a bad id or timestamp. */
export const refusedSigning: fc.Arbitrary<Signing> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ id: anyId, timestamp: anyTimestamp, signature: badSignature }) },
  {
    weight: 1,
    arbitrary: fc.record({ id: fc.constantFrom(undefined, ''), timestamp: anyTimestamp, signature: rightSignature }),
  },
  { weight: 1, arbitrary: fc.record({ id: goodId, timestamp: badTimestamp, signature: rightSignature }) },
);

/** Correct signing headers (some with hostile but non-empty ids, including ids over the 256-character limit). */
export const acceptedSigning: fc.Arbitrary<Signing> = fc.record({
  id: fc.oneof(
    { weight: 4, arbitrary: goodId },
    {
      weight: 1,
      arbitrary: fc
        .oneof(headerValue(60), hugeHeaderValue)
        .map(trimOws)
        .filter((id) => id.length > 0),
    },
  ),
  timestamp: fc.integer({ min: -240, max: 240 }).map((offset): Timestamp => ({ offset })),
  signature: rightSignature,
});

export function signedShot(body: Payload, media: MediaType, chunked: boolean, signing: Signing): Shot {
  const timestamp = resolveTimestamp(signing.timestamp);
  const signature = signatureHeader(signing.signature, signing.id ?? '', timestamp ?? '', body.bytes);
  const headers: Array<readonly [string, string]> = [];
  if (signing.id !== undefined) headers.push(['webhook-id', signing.id]);
  if (timestamp !== undefined) headers.push(['webhook-timestamp', timestamp]);
  if (signature !== undefined) headers.push(['webhook-signature', signature]);
  return { payload: body, media, headers, query: '', chunked };
}
