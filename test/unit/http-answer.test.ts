/**
 * The local host's answer for a handler's result (dev/host/http-answer.ts): the way that skips `HttpResponse` for
 * a plain `{ status, headers, body }` gives the status, headers and bytes the library's way gives, or throws where
 * it throws, whatever the result.
 */
import { HttpResponse } from '@azure/functions';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { libraryAnswer, wireAnswer } from '../../dev/host/http-answer.js';

/** The outcome of an answer: what it writes, or that it threw (the host then answers 500). */
async function outcome(answer: () => Promise<unknown>): Promise<unknown> {
  try {
    return { wrote: await answer() };
  } catch {
    return 'threw';
  }
}

const headerName = fc.oneof(
  fc.constantFrom('content-type', 'Content-Type', 'MS-CorrelationId', 'location', 'set-cookie', 'retry-after', 'x-a'),
  fc.string({ maxLength: 8 }),
);
const headerValue = fc.oneof(
  fc.constantFrom('application/json', 'application/problem+json', ' padded\t', 'a\r\nb', 'é', '', '1'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
);
const body = fc.oneof(
  fc.constantFrom('', '{"ok":true}', 'héllo ☃', '\ud800 lone surrogate'),
  fc.string({ unit: 'binary', maxLength: 40 }),
);
const status = fc.oneof(
  fc.constantFrom(200, 201, 202, 204, 205, 304, 400, 412, 429, 500, 503, 599),
  fc.integer({ min: 0, max: 700 }),
  fc.constantFrom(200.5, Number.NaN),
);
/** Results as handlers return them: mostly plain `{ status, headers, body }`, some with other shapes. */
const result = fc.oneof(
  fc.record({ status, headers: fc.dictionary(headerName, headerValue, { maxKeys: 4 }), body }, { requiredKeys: [] }),
  fc.record({ status, jsonBody: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] }),
  fc.record({ status, body: fc.uint8Array({ maxLength: 16 }) }, { requiredKeys: [] }),
  fc.record({ status, headers: fc.constant(new Headers({ 'x-a': '1' })), body }, { requiredKeys: [] }),
  fc.record({ body, cookies: fc.constant([{ name: 'a', value: 'b' }]) }),
  fc.constantFrom(undefined, null, 'text', 42, {}),
);

describe('the answer to a handler result', () => {
  it('is the same with or without HttpResponse, throwing alike', async () => {
    await fc.assert(
      fc.asyncProperty(result, async (value) => {
        const fast = await outcome(() => wireAnswer(value, HttpResponse));
        const library = await outcome(() => libraryAnswer(value, HttpResponse));
        expect(fast).toEqual(library);
      }),
      { numRuns: 2000 },
    );
  });

  it("writes this app's plain answers without building an HttpResponse (the fast path is taken)", async () => {
    let built = 0;
    class CountedResponse extends HttpResponse {
      constructor(...args: ConstructorParameters<typeof HttpResponse>) {
        super(...args);
        built++;
      }
    }
    await wireAnswer({ status: 200, headers: { 'Content-Type': 'application/json' }, body: '{}' }, CountedResponse);
    expect(built).toBe(0);
    await wireAnswer({ status: 200, jsonBody: {} }, CountedResponse);
    expect(built).toBe(1); // anything else still goes the library's way
  });

  it("gives this app's answers: status, its headers lowercased, the body's UTF-8", async () => {
    const answer = await wireAnswer(
      {
        status: 422,
        headers: { 'Content-Type': 'application/problem+json', 'MS-CorrelationId': 'c' },
        body: '{"é":1}',
      },
      HttpResponse,
    );
    expect(answer).toEqual({
      status: 422,
      headers: { 'content-type': 'application/problem+json', 'ms-correlationid': 'c' },
      body: Buffer.from('{"é":1}'),
    });
  });

  it('takes an HttpResponse as it is', async () => {
    const answer = await wireAnswer(new HttpResponse({ status: 201, jsonBody: { a: 1 } }), HttpResponse);
    expect(answer).toEqual({
      status: 201,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from('{"a":1}'),
    });
  });
});
