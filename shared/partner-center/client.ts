/**
 * The Partner Center Referrals API over HTTP (undici): GET one referral, write it back with `If-Match`, as a
 * whole-referral `PUT` or a JSON Patch `PATCH` (`PARTNER_CENTER_WRITE_METHOD`, docs/partner-center-api.md#put-or-patch).
 *
 * One connection pool per process. This layer makes exactly one attempt per call (plus one immediate
 * retry with a fresh token after a 401) and classifies every failure into an {@link AdapterError};
 * retries, backoff and the 412 loop belong to the update use case, never to a generic HTTP retry
 * layer that would replay the conditional PUT (docs/partner-center-api.md#concurrency-412-and-lost-responses).
 *
 * Every exchange first takes its turn in the process's admission (./admission.ts): at most as many requests
 * in flight as the pool has connections, oldest event first, so a request's timeout starts when it is sent,
 * never while it waits; and a `429` with `Retry-After` pauses the calls of the whole instance (./throttle.ts,
 * docs/partner-center-api.md#throttling-and-retries).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Dispatcher, Pool } from 'undici';
import type { TokenProvider } from '../auth/token-provider.js';
import type { Config } from '../config.js';
import { boundedSignal, isAbortOf } from '../core/abort.js';
import { AdapterError, type ErrorCode } from '../core/errors.js';
import type { PatchOperation } from '../core/merge.js';
import { isJsonObject, type JsonObject } from '../core/referral.js';
import { parseRetryAfter } from '../core/retry.js';
import { USER_AGENT } from '../version.js';
import { Admission } from './admission.js';
import { InstanceThrottle } from './throttle.js';

export interface RequestContext {
  /** `MS-CorrelationId`: one per event, the same on every upstream call it makes. */
  correlationId: string;
  /**
   * Time allowed for the HTTP exchange (the per-request timeout, capped by the event's remaining budget), from
   * when the request is sent: the wait for its turn (admission) is bounded by `abortSignal` only.
   */
  timeoutMs: number;
  /**
   * The event's deadline: it bounds the token acquisition, the wait for admission and the exchange, on top of
   * `timeoutMs`. An event whose deadline passes while it waits never sends the request.
   */
  abortSignal?: AbortSignal;
  /**
   * When the event started (`performance.now()` time; for a batch, its oldest event): admission serves the oldest
   * event first, so an event already under way (its PUT, a retry) is not queued behind events that arrived after
   * it (docs/behaviour.md#admission-to-partner-center). Absent: the time of this call.
   */
  since?: number;
  /** Told the duration and status (undefined: no answer) of every HTTP exchange. */
  observe?: (durationMs: number, status: number | undefined) => void;
}

export interface ReadResult {
  referral: JsonObject;
  /** The eTag exactly as received, quotes included. */
  eTag: string;
}

export type WriteResult =
  | { kind: 'written'; referral: JsonObject | undefined; eTag: string | undefined }
  | { kind: 'precondition-failed'; upstreamStatus: number };

/** `PARTNER_CENTER_WRITE_METHOD`. */
export type WriteMethod = 'put' | 'patch';

/** One planned write, in both forms (core/plan-update.ts): the client sends the one its write method takes. */
export interface PlannedWrite {
  /** The whole referral, for `PUT`. */
  body: JsonObject;
  /** The changed paths only, for `PATCH`. */
  operations: readonly PatchOperation[];
}

export interface PartnerCenterClient {
  getReferral(referralId: string, context: RequestContext): Promise<ReadResult>;
  putReferral(referralId: string, body: JsonObject, eTag: string, context: RequestContext): Promise<WriteResult>;
  /**
   * The write of the use cases: `PUT` of `write.body` or `PATCH` of `write.operations`, by the write method,
   * conditional on `eTag` either way. One attempt; a `412`/`409` is `precondition-failed`, as for `putReferral`.
   */
  writeReferral(referralId: string, write: PlannedWrite, eTag: string, context: RequestContext): Promise<WriteResult>;
  /** How `writeReferral` writes (what a dry run shows); `put` when absent. */
  readonly writeMethod?: WriteMethod;
  close(): Promise<void>;
}

/** The client the runtime builds: the update path's methods, and the access check of the bootstrap. */
export interface ReferralsClient extends PartnerCenterClient {
  /**
   * One read (`GET /v1.0/engagements/referrals?$top=1`): resolves when Partner Center accepts the token, throws
   * the AdapterError an update would meet otherwise (`mfa_required`, `upstream_auth_failed`, …).
   */
  checkAccess(context: RequestContext): Promise<void>;
}

interface UpstreamResponse {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  text: string;
}

const MAX_UPSTREAM_MESSAGE = 1024;

export function createPartnerCenterClient(
  config: Config['partnerCenter'],
  retry: Pick<Config['retry'], 'requestTimeoutMs'> & Partial<Pick<Config['retry'], 'maxDelayMs'>>,
  tokens: TokenProvider,
): ReferralsClient {
  let pool: Promise<Pool> | undefined;
  /** The pool once made: a request then takes it without waiting for a settled promise. */
  let ready: Pool | undefined;
  // As many permits as connections: the pool's own queue is never used (docs/behaviour.md#admission-to-partner-center).
  const admission = new Admission({ permits: config.connections });
  const throttle = new InstanceThrottle(admission);
  const getPool = () => {
    if (pool) return pool;
    const made = import('./undici.js').then(({ Pool }) => {
      const connections = new Pool(config.origin, {
        connections: config.connections,
        keepAliveTimeout: 30_000,
        // Explicit timeouts (undici's defaults are 300 s); each request is also bounded by the event budget.
        connect: { timeout: Math.min(10_000, retry.requestTimeoutMs) },
        headersTimeout: retry.requestTimeoutMs,
        bodyTimeout: retry.requestTimeoutMs,
      });
      if (pool === made) ready = connections; // not if closed meanwhile: the next request makes a new pool
      return connections;
    });
    pool = made;
    return pool;
  };

  /**
   * The call's turn. A pause (a `429`'s `Retry-After`) that outlasts what the event may wait — longer than
   * `RETRY_MAX_DELAY_MS`, or past the event's remaining time — fails at once with `upstream_unavailable` and
   * that `Retry-After`, as the use case does with a `Retry-After` it receives (docs/behaviour.md); a deadline
   * that passes while waiting leaves the queue without sending anything.
   */
  async function admit(method: string, context: RequestContext) {
    const pausedFor = admission.notBefore - Date.now();
    const waitable = retry.maxDelayMs ?? Number.POSITIVE_INFINITY;
    // timeoutMs below the request timeout is the event's remaining time (or its claim's): the pause outlasts it.
    const outlasts = context.timeoutMs < pausedFor && context.timeoutMs < retry.requestTimeoutMs;
    if (pausedFor > 0 && (pausedFor > waitable || outlasts)) throw paused(pausedFor);
    try {
      return await admission.acquire(context.abortSignal, context.since ?? performance.now());
    } catch (error) {
      if (!isAbortOf(error, context.abortSignal)) throw error;
      const left = admission.notBefore - Date.now();
      if (left > 0) throw paused(left);
      throw new AdapterError(
        'upstream_timeout',
        `The event's time ran out while its ${method} waited for its turn to call Partner Center; nothing was sent.`,
        { cause: error },
      );
    }
  }

  const pathOf = (referralId: string) =>
    `${config.basePath}/v1.0/engagements/referrals/${encodeURIComponent(referralId)}`;

  async function send(
    method: 'GET' | 'PUT' | 'PATCH',
    path: string,
    context: RequestContext,
    extra: { body?: string; ifMatch?: string; prefer?: string } = {},
  ): Promise<UpstreamResponse> {
    for (let authAttempt = 0; ; authAttempt++) {
      // The token comes from a cache shared by all events: this event waits for it until its own deadline.
      const token = await tokens.getToken({ abortSignal: context.abortSignal });
      const requestId = randomUUID();
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        'content-type': 'application/json',
        'ms-correlationid': context.correlationId,
        'ms-requestid': requestId,
        'client-request-id': requestId,
        'user-agent': USER_AGENT,
      };
      if (extra.ifMatch !== undefined) headers['if-match'] = extra.ifMatch;
      if (extra.prefer !== undefined) headers.prefer = extra.prefer;
      let response: UpstreamResponse;
      const connections = ready ?? (await getPool());
      const release = await admit(method, context);
      // The request's timeout starts now that it is sent (admission leaves the pool's queue empty).
      const started = performance.now();
      const sentAt = Date.now();
      // The exchange, its body included, within timeoutMs and the event's deadline.
      // One timer and one listener (core/abort.ts boundedSignal), not AbortSignal.any + AbortSignal.timeout.
      const bound = boundedSignal(context.timeoutMs, context.abortSignal);
      try {
        const result = await connections.request({
          method,
          path,
          headers,
          body: extra.body ?? null,
          signal: bound.signal,
        });
        response = { status: result.statusCode, headers: result.headers, text: await result.body.text() };
        // Before the permit goes back, so that a pause holds the next call already.
        const { status } = response;
        throttle.answered(
          sentAt,
          status,
          status === 429 ? parseRetryAfter(header(response, 'retry-after')) : undefined,
        );
      } catch (error) {
        context.observe?.(performance.now() - started, undefined);
        throw networkError(error, method);
      } finally {
        bound.release();
        release();
      }
      context.observe?.(performance.now() - started, response.status);
      // A 401 may be a token revoked or rotated early: forget it and try once more with a fresh one. Not
      // for a missing MFA claim (900421): every token redeemed from the same sign-in lacks it too.
      if (response.status === 401 && authAttempt === 0 && !isMfaRefusal(response)) {
        tokens.invalidate(token);
        continue;
      }
      return response;
    }
  }

  return {
    async getReferral(referralId, context) {
      const response = await send('GET', pathOf(referralId), context);
      if (response.status !== 200) throw statusError(response, referralId, 'GET');
      const referral = parseJson(response.text);
      if (!isJsonObject(referral)) {
        throw new AdapterError('upstream_error', 'Partner Center returned a referral that is not a JSON object.', {
          upstreamStatus: response.status,
          extensions: { referralId },
        });
      }
      const eTag = typeof referral.eTag === 'string' ? referral.eTag : header(response, 'etag');
      if (!eTag) {
        throw new AdapterError(
          'unexpected_referral',
          'Partner Center returned the referral without an eTag; a conditional update is impossible.',
          { upstreamStatus: response.status, extensions: { referralId } },
        );
      }
      return { referral, eTag };
    },

    async putReferral(referralId, body, eTag, context) {
      const response = await send('PUT', pathOf(referralId), context, { body: JSON.stringify(body), ifMatch: eTag });
      return writeResult(response, referralId, 'PUT');
    },

    writeMethod: config.writeMethod,

    async writeReferral(referralId, write, eTag, context) {
      if (config.writeMethod === 'put') return this.putReferral(referralId, write.body, eTag, context);
      // PATCH (docs/partner-center-api.md#patch-json-patch): If-Match is optional there, so it is always sent; the
      // answer carries the referral when `Prefer: return=representation` is honoured.
      const response = await send('PATCH', pathOf(referralId), context, {
        body: JSON.stringify(write.operations),
        ifMatch: eTag,
        prefer: 'return=representation',
      });
      const result = writeResult(response, referralId, 'PATCH');
      if (result.kind !== 'written' || result.referral !== undefined || result.eTag !== undefined) return result;
      // A 204 without an ETag: the write landed, its eTag is read back. A failure of that read leaves the
      // use case a write whose outcome it does not know, which it settles by reading again, never by resending.
      const after = await this.getReferral(referralId, context);
      return { kind: 'written', referral: after.referral, eTag: after.eTag };
    },

    async checkAccess(context) {
      const response = await send('GET', `${config.basePath}/v1.0/engagements/referrals?$top=1`, context);
      if (response.status !== 200) throw statusError(response, '(list)', 'GET');
    },

    async close() {
      admission.close();
      const closing = pool;
      pool = undefined;
      ready = undefined;
      if (closing) await (await closing).close();
    },
  };
}

/**
 * A conditional write's answer: `412`/`409` a precondition failure, another non-2xx refused (statusError), else
 * written, with the referral when the answer has one and its eTag from the body or the `ETag` header.
 */
function writeResult(response: UpstreamResponse, referralId: string, method: 'PUT' | 'PATCH'): WriteResult {
  if (response.status === 412 || response.status === 409) {
    return { kind: 'precondition-failed', upstreamStatus: response.status };
  }
  if (response.status < 200 || response.status >= 300) throw statusError(response, referralId, method);
  const parsed = parseJson(response.text);
  const referral = isJsonObject(parsed) ? parsed : undefined;
  const eTag = typeof referral?.eTag === 'string' ? referral.eTag : header(response, 'etag');
  return { kind: 'written', referral, eTag };
}

/** A call not sent because this instance's calls are paused by a `429`'s `Retry-After`. */
function paused(forMs: number): AdapterError {
  return new AdapterError(
    'upstream_unavailable',
    'Partner Center is throttling this instance (429 with Retry-After): its calls are paused for longer than this event may wait.',
    { upstreamStatus: 429, retryAfterSeconds: Math.max(1, Math.ceil(forMs / 1000)) },
  );
}

function header(response: UpstreamResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Partner API error bodies: `{ error: { code, message, innerError } }`, or the throttling shape. */
function upstreamDetails(response: UpstreamResponse): { status: number; code?: string; message?: string } {
  const body = parseJson(response.text);
  const error = isJsonObject(body) && isJsonObject(body.error) ? body.error : isJsonObject(body) ? body : {};
  const code = typeof error.code === 'string' ? error.code : undefined;
  const message = typeof error.message === 'string' ? error.message.slice(0, MAX_UPSTREAM_MESSAGE) : undefined;
  return {
    status: response.status,
    ...(code === undefined ? {} : { code }),
    ...(message === undefined ? {} : { message }),
  };
}

/** Partner Center's error code for an App+User call whose token does not come from an MFA sign-in. */
const MFA_ERROR_CODE = '900421';

export const MFA_REQUIRED_DETAIL =
  'Partner Center requires multi-factor authentication (error 900421): the stored refresh token comes from a sign-in without MFA, and every token redeemed from it lacks MFA too. A partner admin must run "npm run auth:bootstrap" again and sign the service account in with MFA (docs/authentication.md#what-each-failure-means).';

/** 401/403 with error code 900421, in the Referrals error shape `{ error: { code } }` or the REST one `{ code }`. */
function isMfaRefusal(response: UpstreamResponse): boolean {
  if (response.status !== 401 && response.status !== 403) return false;
  const body = parseJson(response.text);
  if (!isJsonObject(body)) return false;
  const inner = isJsonObject(body.error) ? body.error.code : undefined;
  return [inner, body.code].some((code) => String(code) === MFA_ERROR_CODE);
}

function statusError(response: UpstreamResponse, referralId: string, method: string): AdapterError {
  const upstream = upstreamDetails(response);
  const status = response.status;
  const retryAfterMs = parseRetryAfter(header(response, 'retry-after'));
  const options = {
    upstreamStatus: status,
    extensions: { referralId, upstream },
    ...(retryAfterMs === undefined ? {} : { retryAfterSeconds: Math.ceil(retryAfterMs / 1000) }),
  };
  const say = (code: ErrorCode, detail: string) => new AdapterError(code, detail, options);
  const what = `Partner Center answered ${method} with ${status}${upstream.code ? ` (${upstream.code})` : ''}`;
  if (status === 404)
    return say('referral_not_found', `Referral ${referralId} was not found, or this identity cannot see it.`);
  if (isMfaRefusal(response)) {
    return new AdapterError('mfa_required', `${what}. ${MFA_REQUIRED_DETAIL}`, {
      ...options,
      logCode: 'PARTNER_CENTER_MFA_REQUIRED',
    });
  }
  if (status === 401 || status === 403) {
    return say(
      'upstream_auth_failed',
      `${what}. The token was refused: the Referrals API needs a user in the Referrals Admin or Referrals User role (see docs/authentication.md).`,
    );
  }
  if (status === 429 || status === 503) return say('upstream_unavailable', `${what}; it is throttling or unavailable.`);
  if (status === 504 || status === 408) return say('upstream_timeout', `${what}.`);
  if (status >= 500) return say('upstream_error', `${what}.`);
  return say('upstream_rejected', `${what}${upstream.message ? `: ${upstream.message}` : '.'}`);
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function networkError(error: unknown, method: string): AdapterError {
  if (error instanceof AdapterError) return error;
  const code = (error as { code?: unknown }).code;
  const name = error instanceof Error ? error.name : '';
  if (name === 'TimeoutError' || name === 'AbortError' || (typeof code === 'string' && TIMEOUT_CODES.has(code))) {
    return new AdapterError('upstream_timeout', `Partner Center did not answer the ${method} in time.`, {
      cause: error,
    });
  }
  const label = typeof code === 'string' ? code : name || 'network error';
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) {
    return new AdapterError('upstream_unavailable', `Could not connect to Partner Center (${label}).`, {
      cause: error,
    });
  }
  return new AdapterError(
    'upstream_error',
    `The connection to Partner Center failed during the ${method} (${label}).`,
    {
      cause: error,
    },
  );
}
