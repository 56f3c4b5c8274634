/**
 * Error bodies in the Partner API shape (docs/partner-center-api.md#error-bodies-and-codes):
 * `{ "error": { "code", "message", "target" } }`, and the throttling shape
 * `{ "statusCode": 429, "message": "Rate limit is exceeded. Try again in N seconds." }`.
 */
import { jsonReply, type Reply } from './reply.js';

/** The documented `error.code` values (docs/partner-center-api.md#error-bodies-and-codes). */
export type PartnerErrorCode =
  | 'accessDenied'
  | 'generalException'
  | 'invalidRequest'
  | 'itemNotFound'
  | 'preconditionFailed'
  | 'resourceModified'
  | 'serviceNotAvailable'
  | 'unauthenticated';

export function errorReply(
  status: number,
  code: PartnerErrorCode,
  message: string,
  headers: Record<string, string> = {},
): Reply {
  return jsonReply(status, { error: { code, message, target: 'referral' } }, headers);
}

export function invalidRequest(message: string): Reply {
  return errorReply(400, 'invalidRequest', message);
}

export function notFound(id: string): Reply {
  return errorReply(404, 'itemNotFound', `Referral ${id} was not found.`);
}

export function unauthenticated(message: string): Reply {
  return errorReply(401, 'unauthenticated', message, { 'www-authenticate': 'Bearer' });
}

/**
 * 401 with error code 900421: an App+User token from a sign-in without multi-factor authentication, which
 * Partner Center refuses since its MFA enforcement (docs/partner-center-api.md#mfa-enforcement).
 */
export function mfaRequired(): Reply {
  const message =
    'Multi-factor authentication is required: the access token does not show that the user signed in with MFA.';
  return jsonReply(401, { error: { code: '900421', message, target: 'referral' } }, { 'www-authenticate': 'Bearer' });
}

export function preconditionFailed(): Reply {
  return errorReply(
    412,
    'preconditionFailed',
    "A precondition provided in the request (such as an if-match header) doesn't match the resource's current state.",
  );
}

/** Seconds announced in the 429 message: the Retry-After value when it is a number of seconds. */
function retrySeconds(retryAfter: string): string {
  if (/^\d+$/.test(retryAfter)) return retryAfter;
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? '1' : String(Math.max(0, Math.ceil((date - Date.now()) / 1000)));
}

export function throttled(retryAfter = '1'): Reply {
  return jsonReply(
    429,
    { statusCode: 429, message: `Rate limit is exceeded. Try again in ${retrySeconds(retryAfter)} seconds.` },
    { 'retry-after': retryAfter },
  );
}

const CODE_BY_STATUS: Readonly<Record<number, PartnerErrorCode>> = {
  400: 'invalidRequest',
  401: 'unauthenticated',
  403: 'accessDenied',
  404: 'itemNotFound',
  409: 'resourceModified',
  412: 'preconditionFailed',
  503: 'serviceNotAvailable',
  504: 'serviceNotAvailable',
};

const MESSAGE_BY_CODE: Readonly<Record<PartnerErrorCode, string>> = {
  accessDenied: 'The caller does not have permission to perform the action.',
  generalException: 'An unspecified error has occurred.',
  invalidRequest: 'The request is malformed or incorrect.',
  itemNotFound: 'The resource could not be found.',
  preconditionFailed: 'An if-match precondition does not match.',
  resourceModified: 'The resource being updated has changed since the caller last read it, usually an eTag mismatch.',
  serviceNotAvailable: 'The service is not available. Try the request again after a delay.',
  unauthenticated: 'The caller is not authenticated.',
};

/**
 * The reply an injected `status` fault sends: the throttling shape for 429,
 * otherwise a Partner API error whose code fits the status (`generalException`
 * for anything unmapped, e.g. 500 or 502).
 */
export function statusFaultReply(status: number, retryAfter?: string): Reply {
  if (status === 429) return throttled(retryAfter);
  const code = CODE_BY_STATUS[status] ?? 'generalException';
  const headers: Record<string, string> = retryAfter === undefined ? {} : { 'retry-after': retryAfter };
  return errorReply(status, code, MESSAGE_BY_CODE[code], headers);
}
