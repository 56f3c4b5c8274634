/**
 * Fuzzing the inbound edge with fast-check: hostile bodies (wrong types, huge strings, deep nesting,
 * prototype-pollution keys, invalid UTF-8, odd numbers), media types, headers and Standard Webhooks
 * signatures, sent as raw bytes to the built app under the local host, with and without WEBHOOK_SECRETS.
 *
 * For every generated request: a 4xx, never a 5xx or a 200; an RFC 9457 problem document whose `status`
 * is the HTTP status; none of the long strings sent comes back (in the answer or the host's log); the
 * Partner Center sandbox sees no request and the identity endpoint issues no token. Afterwards the host
 * is still running, logged no internal error or uncaught exception, and nothing is polluted.
 *
 * The generators live in test/support/fuzz/: bodies.ts, requests.ts (media types, headers, queries) and
 * signatures.ts (Standard Webhooks signing).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  bytesOf,
  decoder,
  hostileBody,
  isObject,
  MAX_BODY_BYTES,
  payload,
  roundTrips,
  SEED,
  sizedBody,
  text,
  utf8,
  validEvent,
} from '../support/fuzz/bodies.js';
import {
  type HeaderList,
  type MediaType,
  mediaType,
  otherHeaders,
  query,
  type Shot,
} from '../support/fuzz/requests.js';
import { acceptedSigning, hmac, nowSeconds, refusedSigning, SECRET, signedShot } from '../support/fuzz/signatures.js';
import { REPO_ROOT, type Stack, useStack } from '../support/stack.js';

const PROPERTY_TIMEOUT_MS = 120_000;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Own property names of Object.prototype before any test ran, to detect pollution of this process. */
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).sort();

// ---------------------------------------------------------------------------------------------------
// Sending and checking
// ---------------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

/** Figures for docs/reliability.md (scripts/reliability-report.mjs reads test-results/fuzz.json). */
const figures = { runs: 0, responses5xx: 0, upstreamCalls: 0, startedAt: Date.now() };
afterAll(() => {
  mkdirSync(`${REPO_ROOT}test-results`, { recursive: true });
  const { startedAt, ...counts } = figures;
  writeFileSync(
    'test-results/fuzz.json',
    `${JSON.stringify({ ...counts, timeMs: Date.now() - startedAt }, null, 2)}\n`,
  );
});

async function send(stack: Stack, shot: Shot): Promise<Reply> {
  const headers = new Headers();
  if (shot.media.value !== undefined) headers.set('content-type', shot.media.value);
  for (const [name, value] of shot.headers) headers.append(name, value);
  const body = shot.chunked ? new Blob([shot.payload.bytes]).stream() : shot.payload.bytes;
  const response = await fetch(`${stack.hostUrl}/api/referral-updates${shot.query}`, {
    method: 'POST',
    headers,
    body,
    duplex: 'half',
    signal: AbortSignal.timeout(15_000),
  });
  figures.runs++;
  if (response.status >= 500) figures.responses5xx++;
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** The statuses the contract allows, in its order: 415 media type, 413 size, then `afterLimits`. */
function expectedStatuses(shot: Shot, afterLimits: readonly number[]): readonly number[] | undefined {
  if (shot.media.json === undefined) return undefined;
  if (!shot.media.json) return [415];
  const { bytes } = shot.payload;
  if (bytes.length > MAX_BODY_BYTES) return [413];
  // Invalid UTF-8 grows when decoded (1 byte → U+FFFD, 3 bytes): either reading is defensible.
  if (Buffer.byteLength(decoder.decode(bytes)) > MAX_BODY_BYTES) return [413, ...afterLimits];
  return afterLimits;
}

const CODE_OF_STATUS: Record<number, string> = {
  400: 'invalid_event',
  401: 'invalid_signature',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** Values longer than 40 characters in the body (JSON-parsed) and in the headers, as their first 40 characters. */
function longInputs(shot: Shot): string[] {
  const values: string[] = [];
  const keys: string[] = [];
  try {
    const pending: unknown[] = [JSON.parse(decoder.decode(shot.payload.bytes))];
    while (pending.length > 0) {
      const value = pending.pop();
      if (typeof value === 'string') values.push(value);
      else if (Array.isArray(value)) for (const item of value) pending.push(item);
      else if (isObject(value))
        for (const [key, item] of Object.entries(value)) {
          keys.push(key);
          pending.push(item);
        }
    }
  } catch {
    // Not JSON: nothing the app could have parsed out of it.
  }
  // Header values as the server sees them (fetch trims the whitespace around them); not Content-Type.
  for (const [, value] of shot.headers) values.push(value.replace(/^[\t ]+|[\t ]+$/g, ''));
  return values
    .filter((value) => value.length > 40)
    .map((value) => value.slice(0, 40))
    .filter((prefix) => !keys.some((key) => key.includes(prefix)));
}

/** Every prefix sent during the run, checked against the host's log at the end. */
const sentPrefixes = new Set<string>();
/** Tokens the identity endpoint had issued when the current test started (set in beforeEach). */
let tokensAtStart = 0;

function expectProblem(stack: Stack, shot: Shot, reply: Reply, expected: readonly number[] | undefined): void {
  const where = `${reply.status} ${reply.text.slice(0, 600)}`;
  expect(reply.status, where).toBeLessThan(500);
  expect(reply.status, where).not.toBe(200);
  expect([400, 401, 413, 415, 422], where).toContain(reply.status);
  if (expected) expect(expected, where).toContain(reply.status);
  expect(reply.headers.get('content-type') ?? '', where).toMatch(/^application\/problem\+json/);
  expect(reply.headers.get('ms-correlationid') ?? '', where).toMatch(GUID);
  let problem: unknown;
  expect(() => {
    problem = JSON.parse(reply.text);
  }, where).not.toThrow();
  expect(problem, where).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    detail: expect.any(String),
    code: expect.any(String),
    status: reply.status,
    retryable: expect.any(Boolean),
  });
  if (isObject(problem)) {
    expect(problem.type, where).toBe(`urn:partner-referral-webhook:error:${String(problem.code)}`);
    const code = CODE_OF_STATUS[reply.status];
    if (code) expect(problem.code, where).toBe(code);
  }
  for (const prefix of longInputs(shot)) {
    sentPrefixes.add(prefix);
    expect(reply.text.includes(prefix), `echoed ${JSON.stringify(prefix)}: ${where}`).toBe(false);
    expect(reply.text.includes(JSON.stringify(prefix).slice(1, -1)), `echoed ${JSON.stringify(prefix)}`).toBe(false);
  }
  figures.upstreamCalls += stack.sandbox.requests.length;
  expect(stack.sandbox.requests, 'a request reached the Partner Center sandbox').toEqual([]);
  expect(stack.identity.issued.slice(tokensAtStart), 'the identity endpoint issued a token').toEqual([]);
}

/** The host is running, its output has no internal error or uncaught exception, and no input in its log. */
function expectHealthyHost(stack: Stack): void {
  expect(stack.host.child.exitCode).toBeNull();
  expect(stack.host.child.signalCode).toBeNull();
  const output = stack.host.output();
  for (const marker of ['internal_error', 'TypeError', 'RangeError', 'Unhandled', 'handler threw']) {
    expect(output, marker).not.toContain(marker);
  }
  expect(output).not.toMatch(/uncaught/i);
  for (const prefix of sentPrefixes) expect(output.includes(prefix), `logged ${JSON.stringify(prefix)}`).toBe(false);
}

function expectNoPollutionHere(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_NAMES);
  const probe: Record<string, unknown> = {};
  for (const key of ['polluted', 'referralId', 'status', 'notes']) expect(probe[key], key).toBeUndefined();
}

// ---------------------------------------------------------------------------------------------------
// Default settings
// ---------------------------------------------------------------------------------------------------

describe('fuzz: default settings', () => {
  const stack = useStack({}, { resetSandbox: true });
  beforeEach(() => {
    tokensAtStart = stack.identity.issued.length;
  });

  it(
    'any hostile body, media type, header set and query: a 4xx problem document, no echo, nothing upstream',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({ payload: hostileBody, media: mediaType, headers: otherHeaders, query, chunked: fc.boolean() }),
          async (shot) => {
            stack.sandbox.reset();
            const reply = await send(stack, shot);
            expectProblem(stack, shot, reply, expectedStatuses(shot, [400]));
          },
        ),
        { numRuns: 200 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'bodies around and above 64 KiB: 413 above the limit (sized or chunked), 400 at or below it',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            payload: sizedBody,
            media: fc.constant<MediaType>({ value: 'application/json', json: true }),
            headers: fc.constant<HeaderList>([]),
            query: fc.constant(''),
            chunked: fc.boolean(),
          }),
          async (shot) => {
            stack.sandbox.reset();
            const reply = await send(stack, shot);
            expectProblem(stack, shot, reply, expectedStatuses(shot, [400]));
          },
        ),
        { numRuns: 100 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it.each([
    { what: '__proto__ as an own key', body: '{"__proto__":{"polluted":1},"referralId":"x","notes":"y"}', status: 400 },
    {
      what: '__proto__ carrying a valid event',
      body: `{"__proto__":{"referralId":"${SEED}","status":"Active"}}`,
      status: 400,
    },
    {
      what: 'constructor.prototype',
      body: `{"constructor":{"prototype":{"polluted":1}},"referralId":"${SEED}","notes":"y"}`,
      status: 400,
    },
    { what: '5,000 nested arrays', body: `${'['.repeat(5000)}${']'.repeat(5000)}`, status: 400 },
    { what: '5,000 nested objects', body: `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, status: 400 },
    { what: 'dealValue 1e309', body: `{"referralId":"${SEED}","dealValue":1e309}`, status: 400 },
    { what: 'dealValue NaN', body: `{"referralId":"${SEED}","dealValue":NaN}`, status: 400 },
    { what: 'an empty body', body: '', status: 400 },
    { what: 'null', body: 'null', status: 400 },
    { what: 'a number', body: '42', status: 400 },
    { what: 'an array', body: `[{"referralId":"${SEED}","notes":"x"}]`, status: 400 },
    {
      what: 'a body one byte over the limit',
      body: `{"referralId":"${SEED}","notes":"${'x'.repeat(MAX_BODY_BYTES)}"}`,
      status: 413,
    },
  ])('examples: $what → $status', async ({ body, status }) => {
    const shot: Shot = {
      payload: text('example', body),
      media: { value: 'application/json', json: true },
      headers: [],
      query: '',
      chunked: false,
    };
    expectProblem(stack, shot, await send(stack, shot), [status]);
  });

  it.each([
    { contentType: 'text/plain' },
    { contentType: 'application/x-www-form-urlencoded' },
    { contentType: 'application/jsonx' },
    { contentType: undefined },
  ])('examples: a valid event sent with Content-Type $contentType → 415, nothing upstream', async ({ contentType }) => {
    const shot: Shot = {
      payload: text('valid event', JSON.stringify({ referralId: SEED, status: 'Active' })),
      media: { value: contentType, json: false },
      headers: [],
      query: '',
      chunked: false,
    };
    expectProblem(stack, shot, await send(stack, shot), [415]);
  });

  it('afterwards: the host runs, logged no internal error or input, and no prototype was polluted', async () => {
    expectHealthyHost(stack);
    expectNoPollutionHere();
    // Inherited values would fill missing fields: a referral id alone (no change) must still be refused.
    const noChange = await stack.post({ referralId: SEED });
    expect(noChange.status, noChange.text).toBe(400);
    expect(noChange.body.errors).toEqual([expect.objectContaining({ code: 'no_change' })]);
    const noId = await stack.post({ notes: 'probe' });
    expect(noId.status, noId.text).toBe(400);
    expect(noId.body.errors).toEqual([expect.objectContaining({ field: 'referralId' })]);
    expect(stack.sandbox.requests).toEqual([]);
    expect((await stack.health()).status).toBe(200);
  });

  // Found by this suite (fixed): the body used to be decoded with U+FFFD replacement, so an otherwise
  // valid event whose strings held bytes that are not UTF-8 answered 200 and wrote the replacement
  // characters to Partner Center. Now: a problem document (400, or 415 for another charset), nothing upstream.
  it.each([
    ['0xC3 0x28 in notes', 'application/json', bytesOf(`{"referralId":"${SEED}","notes":"`, [0xc3, 0x28], '"}')],
    ['0xFF in notes', 'application/json', bytesOf(`{"referralId":"${SEED}","notes":"a`, [0xff], 'b"}')],
    [
      'a CESU-8 lone surrogate in name',
      'application/json',
      bytesOf(`{"referralId":"${SEED}","name":"x`, [0xed, 0xa0, 0x80], '"}'),
    ],
    [
      'Latin-1 bytes under charset=latin1',
      'application/json; charset=latin1',
      bytesOf(`{"referralId":"${SEED}","notes":"caf`, [0xe9], '"}'),
    ],
  ])('refuses a body that is not UTF-8 (%s) instead of writing U+FFFD upstream', async (_what, contentType, bytes) => {
    const shot: Shot = {
      payload: payload('not UTF-8', bytes),
      media: { value: contentType, json: true },
      headers: [],
      query: '',
      chunked: false,
    };
    expectProblem(stack, shot, await send(stack, shot), [400, 415]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Signed webhooks required
// ---------------------------------------------------------------------------------------------------

describe('fuzz: signed webhooks required (WEBHOOK_SECRETS set)', () => {
  const stack = useStack({ WEBHOOK_SECRETS: SECRET }, { resetSandbox: true });
  beforeEach(() => {
    tokensAtStart = stack.identity.issued.length;
  });

  it(
    'headers that do not sign this request, on any body (valid events included): 401 after 415/413, nothing upstream',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            body: fc.oneof(
              { weight: 2, arbitrary: validEvent },
              { weight: 3, arbitrary: hostileBody },
              { weight: 1, arbitrary: sizedBody },
            ),
            media: mediaType,
            chunked: fc.boolean(),
            signing: refusedSigning,
          }),
          async ({ body, media, chunked, signing }) => {
            stack.sandbox.reset();
            const shot = signedShot(body, media, chunked, signing);
            expectProblem(stack, shot, await send(stack, shot), expectedStatuses(shot, [401]));
          },
        ),
        { numRuns: 200 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'correctly signed hostile bodies: 400 (or 413/415), never 401, nothing upstream',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            body: fc.oneof({ weight: 5, arbitrary: hostileBody }, { weight: 1, arbitrary: sizedBody }),
            media: mediaType,
            chunked: fc.boolean(),
            signing: acceptedSigning,
          }),
          async ({ body, media, chunked, signing }) => {
            stack.sandbox.reset();
            const shot = signedShot(body, media, chunked, signing);
            // The app signs the decoded text: bytes that do not survive decoding cannot match a raw-bytes HMAC.
            const afterLimits = roundTrips(body.bytes) ? [400] : [400, 401];
            expectProblem(stack, shot, await send(stack, shot), expectedStatuses(shot, afterLimits));
          },
        ),
        { numRuns: 150 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('afterwards: the host runs, logged no internal error or input, and no prototype was polluted', async () => {
    expectHealthyHost(stack);
    expectNoPollutionHere();
    const body = JSON.stringify({ referralId: SEED });
    const timestamp = String(nowSeconds());
    const noChange = await stack.post(body, {
      headers: {
        'webhook-id': 'msg_probe',
        'webhook-timestamp': timestamp,
        'webhook-signature': `v1,${hmac(SECRET, 'msg_probe', timestamp, utf8(body))}`,
      },
    });
    expect(noChange.status, noChange.text).toBe(400);
    expect(noChange.body.errors).toEqual([expect.objectContaining({ code: 'no_change' })]);
    expect(stack.sandbox.requests).toEqual([]);
    expect(stack.identity.issued.slice(tokensAtStart)).toEqual([]);
    expect((await stack.health()).status).toBe(200);
  });
});
