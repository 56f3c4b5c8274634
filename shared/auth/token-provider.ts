/**
 * Access tokens for Partner Center: the interface the client uses, and the cache every token source
 * shares. One token is reused across invocations until shortly before it expires; concurrent events
 * share one in-flight request; a failed renewal keeps a still-valid token in use.
 *
 * The shared request belongs to no event: it runs under its own bound (`fetchTimeoutMs`), and an event
 * whose deadline aborts stops waiting for it without cancelling it for the others.
 */
import type { AccessToken } from '@azure/identity';
import { type AbortOptions, abortable, isAbortOf } from '../core/abort.js';
import { AdapterError } from '../core/errors.js';

export interface TokenProvider {
  /**
   * A bearer token for Partner Center. Throws an AdapterError; `upstream_timeout` when `abortSignal`
   * (the event's deadline) aborts first.
   */
  getToken(options?: { abortSignal?: AbortSignal }): Promise<string>;
  /** Forget `token` (after Partner Center answered 401 to it), so the next call fetches another. */
  invalidate(token: string): void;
  /**
   * app-user only: redeem the refresh token now, bypassing the access-token cache (the keep-alive timer).
   * Throws the AdapterError of a failed redemption.
   */
  renew?(): Promise<void>;
  /** What `/api/health` shows about tokens. Never a token or secret. */
  health(): Promise<TokenHealth>;
}

export interface TokenStatus {
  /** Token requests (managed identity) or redemptions (app-user) made by this process. */
  requests: number;
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
  /** A code or error class name, never a message that could quote a token. */
  lastFailure: string | null;
}

export interface RefreshTokenHealth {
  /** When the newest stored version was written (each redemption writes one). */
  storedAt: string;
  ageDays: number;
  /** storedAt + 90 days: the refresh token dies then unless it is redeemed first. */
  expiresAt: string;
  daysLeft: number;
}

/** The keep-alive timer's last outcome (app-user). */
export interface RenewalStatus {
  lastRenewalAt: string | null;
  /** The log code of the last renewal when it failed; null once one succeeds. */
  lastRenewalFailure: string | null;
}

export interface TokenHealth extends TokenStatus, Partial<RenewalStatus> {
  mode: 'managed-identity' | 'app-user';
  refreshToken?: RefreshTokenHealth | null;
  warnings: string[];
}

export interface TokenCacheOptions {
  /** Start renewing this long before expiry. */
  refreshMarginMs?: number;
  /** Upper bound for one shared token request, whoever waits for it (30 s). */
  fetchTimeoutMs?: number;
}

const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;
const DEFAULT_FETCH_TIMEOUT_MS = 30_000;
/** A token with less than this left is never handed out, even when renewal fails. */
const MIN_USABLE_MS = 30_000;

export interface TokenCache {
  getToken(options?: AbortOptions): Promise<string>;
  /** Fetch a new token now, whatever is cached (joins a request already in flight). */
  refresh(): Promise<AccessToken>;
  invalidate(token: string): void;
  readonly status: TokenStatus;
}

/**
 * Wraps `fetchToken` with reuse until near expiry, single flight, and status for health. `fetchToken`
 * gets the shared request's own signal (its bound, never an event's deadline) and must pass it on.
 */
export function createTokenCache(
  fetchToken: (options: { abortSignal: AbortSignal }) => Promise<AccessToken>,
  options: TokenCacheOptions = {},
): TokenCache {
  const refreshMarginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  let cached: AccessToken | undefined;
  let inFlight: Promise<AccessToken> | undefined;
  const status: TokenStatus = { requests: 0, lastSuccessAt: null, lastFailureAt: null, lastFailure: null };

  async function fetchAndRecord(): Promise<AccessToken> {
    status.requests++;
    try {
      const token = await fetchToken({ abortSignal: AbortSignal.timeout(fetchTimeoutMs) });
      status.lastSuccessAt = new Date().toISOString();
      // Kept even when every waiter has given up: the next event uses it.
      cached = token;
      return token;
    } catch (error) {
      status.lastFailureAt = new Date().toISOString();
      status.lastFailure = failureLabel(error);
      throw error;
    }
  }

  const shared = () => {
    inFlight ??= fetchAndRecord().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  return {
    status,
    refresh: shared,
    async getToken(options = {}) {
      if (cached && cached.expiresOnTimestamp - Date.now() > refreshMarginMs) return cached.token;
      const request = shared();
      try {
        // This caller stops waiting at its own deadline; the shared request goes on for the others.
        return (await abortable(request, options.abortSignal)).token;
      } catch (error) {
        if (cached && cached.expiresOnTimestamp - Date.now() > MIN_USABLE_MS) return cached.token;
        if (isAbortOf(error, options.abortSignal)) throw waitAborted(error);
        throw error;
      }
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined;
    },
  };
}

function waitAborted(reason: unknown): AdapterError {
  return new AdapterError(
    'upstream_timeout',
    'The time budget for this event ran out while a Partner Center access token was being obtained.',
    { cause: reason, logCode: 'PARTNER_CENTER_TOKEN_WAIT_ABORTED' },
  );
}

/** `code` of an AdapterError-like error, else the error's class name. */
function failureLabel(error: unknown): string {
  const code = (error as { logCode?: unknown; code?: unknown }).logCode ?? (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'Error';
}
