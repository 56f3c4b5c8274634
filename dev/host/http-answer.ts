/**
 * What the local host writes back for a handler's result: the status, headers and body bytes the Functions
 * worker takes from it (`toRpcHttp` in @azure/functions: `new HttpResponse(result)` unless it is one, then its
 * status, headers and `arrayBuffer()`).
 *
 * The common result, a plain `{ status, headers, body }` with a string body (what every function of this app
 * returns), skips the `HttpResponse`: building one costs a fetch `Response` with a web stream for its body, read
 * back at once. The answer is the same: the headers go through the same `Headers` (same validation, lowercase
 * names, values trimmed), a string body adds the same `Content-Type: text/plain;charset=UTF-8` when none is set,
 * and the bytes are its UTF-8 (test/unit/http-answer.test.ts checks both ways agree). Anything else (an
 * `HttpResponse`, `jsonBody`, `cookies`, a body that is not a string, a status outside 200–599 or one that has no
 * body) takes the library's way.
 */
import type { HttpResponse, HttpResponseInit } from '@azure/functions';

export interface WireAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Statuses whose answer has no body (the library drops one). */
const NULL_BODY = new Set([204, 205, 304]);
const FAST_KEYS = new Set(['status', 'headers', 'body']);

type HttpResponseClass = new (init?: HttpResponseInit) => HttpResponse;

/** A plain record of string values (not a `Headers`, not an array of pairs). */
function isPlainStringRecord(value: unknown): value is Record<string, string> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (typeof (value as Record<string, unknown>)[key] !== 'string') return false;
  }
  return true;
}

/** `result` as a plain `{ status, headers, body }` with a string body, or undefined when it is anything else. */
function plainAnswer(result: unknown): { status: number; headers?: Record<string, string>; body?: string } | undefined {
  if (typeof result !== 'object' || result === null || Object.getPrototypeOf(result) !== Object.prototype) {
    return undefined;
  }
  const init = result as { status?: unknown; headers?: unknown; body?: unknown };
  for (const key of Object.keys(init)) {
    if (!FAST_KEYS.has(key)) return undefined;
  }
  const status = init.status === undefined ? 200 : init.status;
  if (
    typeof status !== 'number' ||
    !Number.isInteger(status) ||
    status < 200 ||
    status > 599 ||
    NULL_BODY.has(status)
  ) {
    return undefined;
  }
  if (init.body !== undefined && typeof init.body !== 'string') return undefined;
  if (init.headers !== undefined && !isPlainStringRecord(init.headers)) return undefined;
  return {
    status,
    ...(init.headers !== undefined ? { headers: init.headers } : {}),
    ...(init.body !== undefined ? { body: init.body } : {}),
  };
}

function headerRecord(headers: Headers): Record<string, string> {
  const record: Record<string, string> = {};
  headers.forEach((value, name) => {
    record[name] = value;
  });
  return record;
}

/** The answer to write for a handler's `result`; throws where the library would (an invalid header, status). */
export async function wireAnswer(result: unknown, HttpResponseClass: HttpResponseClass): Promise<WireAnswer> {
  const plain = result instanceof HttpResponseClass ? undefined : plainAnswer(result ?? {});
  if (plain) {
    const headers = new Headers(plain.headers);
    if (plain.body !== undefined && !headers.has('content-type')) {
      headers.set('content-type', 'text/plain;charset=UTF-8');
    }
    return {
      status: plain.status,
      headers: headerRecord(headers),
      body: plain.body === undefined ? Buffer.alloc(0) : Buffer.from(plain.body, 'utf8'),
    };
  }
  return libraryAnswer(result, HttpResponseClass);
}

/** The library's way, for every result: what {@link wireAnswer} must agree with. */
export async function libraryAnswer(result: unknown, HttpResponseClass: HttpResponseClass): Promise<WireAnswer> {
  const response =
    result instanceof HttpResponseClass ? result : new HttpResponseClass((result ?? {}) as HttpResponseInit);
  return {
    status: response.status,
    headers: headerRecord(response.headers as unknown as Headers),
    body: Buffer.from(await response.arrayBuffer()),
  };
}
