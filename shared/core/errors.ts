/**
 * Every error the adapter can answer with, in one place.
 *
 * Each entry has a stable `code` (what callers branch on), the HTTP status, whether a retry of the same
 * event can succeed (`retryable`), and a short title. Modelled on fastify's `errors.js` and undici's
 * `lib/core/errors.js`: errors are data first, and the HTTP mapping is a property of the definition.
 */

import { isAbortError } from './abort.js';
import type { StageMapping } from './update.js';

export const ERROR_DEFINITIONS = {
  invalid_event: { status: 400, retryable: false, title: 'The update event is invalid' },
  unsupported_media_type: { status: 415, retryable: false, title: 'The request body must be JSON' },
  payload_too_large: { status: 413, retryable: false, title: 'The request body is too large' },
  invalid_signature: { status: 401, retryable: false, title: 'The webhook signature is missing or invalid' },
  idempotency_key_reused: {
    status: 422,
    retryable: false,
    title: 'The event id was already used for a different event',
  },
  in_progress: { status: 409, retryable: true, title: 'The same event is being processed' },
  referral_not_found: { status: 404, retryable: false, title: 'The referral does not exist' },
  transition_not_allowed: {
    status: 422,
    retryable: false,
    title: 'The status change is not allowed',
  },
  referral_closed: { status: 422, retryable: false, title: 'The referral is closed' },
  upstream_rejected: { status: 422, retryable: false, title: 'Partner Center rejected the update' },
  conflict: {
    status: 409,
    retryable: true,
    title: 'The referral kept changing while it was being updated',
  },
  upstream_auth_failed: {
    status: 502,
    retryable: false,
    title: 'Partner Center refused the credentials',
  },
  mfa_required: {
    status: 502,
    retryable: false,
    title: 'Partner Center requires a sign-in with multi-factor authentication',
  },
  upstream_error: { status: 502, retryable: true, title: 'Partner Center returned an error' },
  unexpected_referral: {
    status: 502,
    retryable: false,
    title: 'Partner Center returned a referral the adapter cannot update safely',
  },
  upstream_unavailable: { status: 503, retryable: true, title: 'Partner Center is unavailable' },
  upstream_timeout: { status: 504, retryable: true, title: 'Partner Center did not answer in time' },
  idempotency_store_unavailable: {
    status: 503,
    retryable: true,
    title: 'The idempotency store is unavailable',
  },
  delivery_unavailable: {
    status: 503,
    retryable: true,
    title: 'The event could not be queued for asynchronous delivery',
  },
  async_unavailable: {
    status: 503,
    retryable: false,
    title: 'Asynchronous delivery is not available with this configuration',
  },
  event_not_found: { status: 404, retryable: false, title: 'No such event' },
  dead_lettered: {
    status: 424,
    retryable: false,
    title: 'The event could not be applied within its maximum age and was dead-lettered',
  },
  replay_not_allowed: { status: 409, retryable: false, title: 'Only a dead-lettered event can be replayed' },
  configuration_invalid: {
    status: 500,
    retryable: false,
    title: 'The adapter is misconfigured',
  },
  internal_error: { status: 500, retryable: false, title: 'Unexpected error in the adapter' },
} as const satisfies Record<string, { status: number; retryable: boolean; title: string }>;

export type ErrorCode = keyof typeof ERROR_DEFINITIONS;

/** One bad field of an event: the entries of a 400 `invalid_event`. */
export interface FieldError {
  /** JSON pointer into the request body (`/substatus`), `''` for the body as a whole. */
  pointer: string;
  /** The field name as the caller wrote it, or `body`. */
  field: string;
  /** Machine-readable reason (zod's issue code, or our own). */
  code: string;
  message: string;
}

/** Extra members of the problem document (RFC 9457 extension members). Never carries secrets or PII. */
export interface ProblemExtensions {
  errors?: FieldError[];
  referralId?: string;
  current?: { status: unknown; substatus: unknown };
  requested?: { status?: string; substatus?: string };
  allowedTargets?: Array<{ status: string; substatus: string }>;
  upstream?: { status?: number; code?: string; message?: string };
  problems?: string[];
  /** A refusal of the transition rules for an event that named a CRM stage: the stage and what it mapped to. */
  stage?: StageMapping;
  /** Asynchronous delivery (docs/async-delivery.md): where the event is (`failed` and `dead_lettered` answers of the status URL, replay_not_allowed). */
  state?: 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'dead_lettered';
  eventId?: string;
  /** dead_lettered: attempts made, when it was accepted, last tried, given up, and the last attempt's error. */
  attempts?: number;
  acceptedAt?: string;
  lastAttemptAt?: string | null;
  deadLetteredAt?: string | null;
  lastError?: { code: string; status: number } | null;
  /** dead_lettered: how to put the event back in the queue (function key). */
  replay?: { method: 'POST'; path: string };
}

export interface AdapterErrorOptions {
  /** Seconds the caller should wait before retrying (sent as `Retry-After`). */
  retryAfterSeconds?: number;
  extensions?: ProblemExtensions;
  /** HTTP status Partner Center answered with, when the error came from upstream. */
  upstreamStatus?: number;
  /** A distinct, searchable code for the logs (e.g. PARTNER_CENTER_REFRESH_TOKEN_INVALID); never sent to callers. */
  logCode?: string;
  cause?: unknown;
}

export class AdapterError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly title: string;
  readonly retryAfterSeconds: number | undefined;
  readonly extensions: ProblemExtensions;
  readonly upstreamStatus: number | undefined;
  readonly logCode: string | undefined;

  constructor(code: ErrorCode, detail: string, options: AdapterErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    const definition = ERROR_DEFINITIONS[code];
    this.name = 'AdapterError';
    this.code = code;
    this.status = definition.status;
    this.retryable = definition.retryable;
    this.title = definition.title;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.extensions = options.extensions ?? {};
    this.upstreamStatus = options.upstreamStatus;
    this.logCode = options.logCode;
  }
}

export function isAdapterError(error: unknown): error is AdapterError {
  return error instanceof AdapterError;
}

/** The RFC 9457 problem document the functions answer with. */
export interface Problem extends ProblemExtensions {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  retryable: boolean;
}

export const PROBLEM_TYPE_PREFIX = 'urn:partner-referral-webhook:error:';

export function toProblem(error: AdapterError): Problem {
  return {
    type: `${PROBLEM_TYPE_PREFIX}${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.message,
    code: error.code,
    retryable: error.retryable,
    ...error.extensions,
  };
}

/**
 * How a storage edge (a Table store, the queue) turns any failure into its own retryable error: the error of
 * `code`, "`what` could not be used (the failure's summary)`suffix`.", with its log code; an `AdapterError` passes.
 */
export function storageFailure(
  code: ErrorCode,
  what: string,
  logCode: string,
  suffix = '',
): (error: unknown) => AdapterError {
  return (error) =>
    error instanceof AdapterError
      ? error
      : new AdapterError(code, `${what} could not be used (${failureSummary(error)})${suffix}.`, {
          cause: error,
          retryAfterSeconds: 2,
          logCode,
        });
}

/** What a storage call's failure was, for a detail: its HTTP status, a timeout, or the error's name (never its message). */
export function failureSummary(error: unknown): string {
  const status = statusCodeOf(error);
  if (status !== undefined) return `HTTP ${status}`;
  if (isAbortError(error)) return 'no answer in time';
  return error instanceof Error ? error.name : 'error';
}

/** The HTTP status an Azure SDK error carries (`statusCode`), when it has one. */
export function statusCodeOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
