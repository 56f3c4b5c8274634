/**
 * The reliability run's parameters (test/integration/reliability.test.ts). The seed is not here: the test
 * reads it from RELIABILITY_SEED (or draws one) and passes it on.
 */

export const FAULT_RATE = 0.18;
export const REFERRALS = 50;
export const EVENTS_PER_REFERRAL = 20;
/** The run under `PARTNER_CENTER_WRITE_METHOD=patch` is smaller (400 events), to keep the suite's time sane. */
export const PATCH_REFERRALS = 20;
export const IN_FLIGHT = 16;
export const CALLER_RETRIES = 4;
export const CALLER_RETRY_DELAY_MS = 20;
export const COPY_SHARE = 0.2;
export const REDELIVERY_SHARE = 0.1;
export const REUSE_SHARE = 0.03;
/** Events allowed to end with only retryable answers (every delivery, every caller retry): 0.5 %. */
export const MAX_UNRESOLVED_EVENTS = 5;
/**
 * The app's own retries are turned down (defaults: 4 and 4) so that its answers to callers are often
 * retryable: callers then retry, and a retry after a PUT whose answer was lost must come back `unchanged`.
 */
export const APP_SETTINGS = {
  UPSTREAM_BUDGET_MS: '8000',
  UPSTREAM_MAX_RETRIES: '1',
  CONCURRENCY_MAX_RETRIES: '1',
};

// The error-status table is written out here on purpose rather than taken from shared/: the model must not
// inherit a mistake of the code it checks.

/** Statuses a caller (Power Automate) retries. */
export const RETRYABLE = new Set([409, 429, 502, 503, 504]);
/** The retryable codes the contract allows, by status. */
export const RETRYABLE_CODES: Record<number, readonly string[]> = {
  409: ['in_progress', 'conflict'],
  502: ['upstream_error'],
  503: ['upstream_unavailable', 'idempotency_store_unavailable'],
  504: ['upstream_timeout'],
};
