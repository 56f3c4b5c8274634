/**
 * The HTTP header names of contract v1, in one place: the code that reads and writes them and the
 * OpenAPI document (contract/openapi.ts) both use these. Names as sent; HTTP header names are case-insensitive.
 */

/** One per event: the caller's GUID or a new one, sent on every Partner Center call and returned. */
export const CORRELATION_HEADER = 'MS-CorrelationId';

/** Request headers the adapter reads. */
export const REQUEST_HEADERS = {
  correlationId: CORRELATION_HEADER,
  /** Standard Webhooks message id: the event id (wins over Idempotency-Key and the body's eventId). */
  webhookId: 'webhook-id',
  idempotencyKey: 'Idempotency-Key',
  webhookTimestamp: 'webhook-timestamp',
  webhookSignature: 'webhook-signature',
} as const;

/** Response headers the adapter sets. */
export const RESPONSE_HEADERS = {
  correlationId: CORRELATION_HEADER,
  /** `true` on an answer replayed from the idempotency store. */
  replayed: 'Idempotent-Replayed',
  retryAfter: 'Retry-After',
} as const;

/** Statuses whose problem carries `Retry-After` when the error says when to come back. */
export const RETRY_AFTER_STATUSES: readonly number[] = [409, 503];
