/**
 * Results and errors as Functions HTTP responses: JSON for success, RFC 9457 problem documents for
 * errors, `MS-CorrelationId` on both, `Retry-After` where the caller should come back later.
 */
import type { HttpResponseInit } from '@azure/functions';
import { AdapterError, isAdapterError, toProblem } from './errors.js';
import { CORRELATION_HEADER } from './headers.js';

export function jsonResponse(status: number, body: unknown, correlationId?: string): HttpResponseInit {
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      ...(correlationId ? { [CORRELATION_HEADER]: correlationId } : {}),
    },
    body: JSON.stringify(body),
  };
}

/** Statuses whose problem carries `Retry-After` when the error says when to come back. */
export const RETRY_AFTER_STATUSES: readonly number[] = [409, 503];

export function problemResponse(error: AdapterError, correlationId?: string): HttpResponseInit {
  const response = jsonResponse(error.status, toProblem(error), correlationId);
  const headers = response.headers as Record<string, string>;
  headers['content-type'] = 'application/problem+json; charset=utf-8';
  if (error.retryAfterSeconds !== undefined && RETRY_AFTER_STATUSES.includes(error.status)) {
    headers['retry-after'] = String(error.retryAfterSeconds);
  }
  return response;
}

/** Anything thrown becomes an AdapterError; an unexpected one is reported without its message. */
export function asAdapterError(error: unknown): AdapterError {
  if (isAdapterError(error)) return error;
  return new AdapterError(
    'internal_error',
    'The adapter failed unexpectedly. Retry the event; if it keeps failing, search the logs for the MS-CorrelationId of this response.',
    {
      cause: error,
    },
  );
}
