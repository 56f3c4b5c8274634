/**
 * A tiny Referrals API client for the sandbox tests: real HTTP over loopback with Node's global fetch.
 * Everything here is written from the API as documented (docs/partner-center-api.md), not from the sandbox's
 * own modules, so the tests and the sandbox can disagree visibly.
 */
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { type PartnerCenterSandbox, startPartnerCenterSandbox } from '../../dev/sandbox/server.js';

export type Json = Record<string, unknown>;

/** The referrals collection and `/{id}` below it (docs/partner-center-api.md#base-url-and-endpoints). */
export const REFERRALS = '/v1.0/engagements/referrals';

/** An entity tag is a quoted string, e.g. `"2500ec5a-…"` (docs/partner-center-api.md#etag-and-if-match). */
export const QUOTED_ETAG = /^"[^"]+"$/;

/** UTC with 7 fractional digits, e.g. `2018-11-06T18:43:38.9948636Z` (docs/partner-center-api.md#wire-format). */
export const SEVEN_DIGIT_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/;

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body; undefined when the body is empty or not JSON. */
  body: unknown;
}

export interface CallOptions {
  /** A string is sent verbatim; anything else as JSON. */
  body?: unknown;
  /** Extra or overriding headers; a value of `null` removes a default header. */
  headers?: Record<string, string | null>;
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Narrows to a JSON object, failing the test otherwise. */
export function obj(value: unknown, what = 'value'): Json {
  if (!isObject(value)) throw new Error(`expected ${what} to be a JSON object; got ${JSON.stringify(value)}`);
  return value;
}

export function str(value: unknown, what = 'value'): string {
  if (typeof value !== 'string') throw new Error(`expected ${what} to be a string; got ${JSON.stringify(value)}`);
  return value;
}

export async function call(
  sandbox: PartnerCenterSandbox,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Answer> {
  const headers: Record<string, string | null> = {
    authorization: 'Bearer sandbox-test-token',
    accept: 'application/json',
    ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...options.headers,
  };
  const sent: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== null) sent[name] = value;
  const init: RequestInit = { method, headers: sent };
  if (options.body !== undefined) {
    init.body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  }
  const response = await fetch(`${sandbox.url}${path}`, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body };
}

export function itemPath(id: string): string {
  return `${REFERRALS}/${encodeURIComponent(id)}`;
}

export const getReferral = (sandbox: PartnerCenterSandbox, id: string, options?: CallOptions) =>
  call(sandbox, 'GET', itemPath(id), options);

/** PUT with `If-Match` exactly as given (undefined: no If-Match header at all). */
export const putReferral = (
  sandbox: PartnerCenterSandbox,
  id: string,
  body: unknown,
  ifMatch: string | undefined,
  headers: Record<string, string | null> = {},
) =>
  call(sandbox, 'PUT', itemPath(id), {
    body,
    headers: { ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }), ...headers },
  });

export const patchReferral = (
  sandbox: PartnerCenterSandbox,
  id: string,
  operations: unknown,
  headers: Record<string, string | null> = {},
) => call(sandbox, 'PATCH', itemPath(id), { body: operations, headers });

/** GET by id, then the body a correct client PUTs back: all but `links` (docs/partner-center-api.md#put-full-replace). */
export async function readForPut(sandbox: PartnerCenterSandbox, id: string): Promise<{ eTag: string; body: Json }> {
  const answer = await getReferral(sandbox, id);
  expect(answer.status, answer.text).toBe(200);
  const { links: _links, ...body } = obj(answer.body, 'GET body');
  return { eTag: str(body.eTag, 'eTag'), body };
}

/**
 * `{ "error": { "code", "message", … } }`, with `code` and `message` always present
 * (docs/partner-center-api.md#error-bodies-and-codes).
 */
export function expectPartnerError(answer: Answer, status: number, code: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  const error = obj(obj(answer.body, 'error body').error, 'error');
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe('string');
  expect(str(error.message).length).toBeGreaterThan(0);
  expect(str(error.message).length).toBeLessThanOrEqual(1024);
}

/** The stored referral, failing the test when it does not exist. */
export function stored(sandbox: PartnerCenterSandbox, id: string): Json {
  const referral = sandbox.getReferral(id);
  if (referral === undefined) throw new Error(`referral ${id} is not in the sandbox`);
  return referral;
}

/** A copy without the keys a write legitimately changes or a response decorates with. */
export function withoutVolatile(doc: Json, ...extra: string[]): Json {
  const copy = structuredClone(doc);
  for (const key of ['eTag', 'updatedDateTime', 'links', '@odata.context', ...extra]) delete copy[key];
  return copy;
}

/** A seeded sandbox for the enclosing suite, back to its seed before each test. */
export function useSandbox(): PartnerCenterSandbox {
  let started: PartnerCenterSandbox | undefined;
  beforeAll(async () => {
    started = await startPartnerCenterSandbox();
  });
  afterAll(async () => {
    await started?.close();
  });
  beforeEach(() => {
    started?.reset();
  });
  return new Proxy({} as PartnerCenterSandbox, {
    get(_target, key) {
      if (!started) throw new Error('the sandbox is used before beforeAll started it');
      const value: unknown = Reflect.get(started, key);
      return typeof value === 'function' ? value.bind(started) : value;
    },
  });
}
