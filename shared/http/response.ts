/**
 * Results and errors as Functions HTTP responses: JSON for success, RFC 9457 problem documents for
 * errors, `MS-CorrelationId` on both, `Retry-After` where the caller should come back later.
 */
import { CORRELATION_HEADER, RETRY_AFTER_STATUSES } from '../contract/headers.js';
import { AdapterError, isAdapterError, toProblem } from '../core/errors.js';

/** An answer ready for any HTTP layer (a Functions `HttpResponseInit` as it is, or the local host). */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** JSON with `MS-CorrelationId` (when given), never cached; `headers` are added. */
export function jsonResponse(
  status: number,
  body: unknown,
  correlationId?: string,
  headers: Record<string, string> = {},
): HttpAnswer {
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      ...(correlationId ? { [CORRELATION_HEADER]: correlationId } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
  };
}

export function problemResponse(error: AdapterError, correlationId?: string): HttpAnswer {
  const response = jsonResponse(error.status, toProblem(error), correlationId);
  response.headers['content-type'] = 'application/problem+json; charset=utf-8';
  if (error.retryAfterSeconds !== undefined && RETRY_AFTER_STATUSES.includes(error.status)) {
    response.headers['retry-after'] = String(error.retryAfterSeconds);
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
