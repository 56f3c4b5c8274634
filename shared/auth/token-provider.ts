/**
 * Access tokens for Partner Center: the interface the client uses, and the cache every token source
 * shares. One token is reused across invocations until shortly before it expires; concurrent events
 * share one in-flight request; a failed renewal keeps a still-valid token in use.
 */
import type { AccessToken } from '@azure/identity';

/** A token and its expiry (epoch milliseconds): the SDK's `AccessToken`, what every token source returns. */
export type AccessTokenValue = AccessToken;

export interface TokenProvider {
  /** A bearer token for Partner Center. Throws an AdapterError. */
  getToken(): Promise<string>;
  /** Forget `token` (after Partner Center answered 401 to it), so the next call fetches another. */
  invalidate(token: string): void;
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

export interface TokenHealth extends TokenStatus {
  mode: 'managed-identity' | 'app-user';
  refreshToken?: RefreshTokenHealth | null;
  warnings: string[];
}

export interface TokenCacheOptions {
  /** Start renewing this long before expiry. */
  refreshMarginMs?: number;
}

const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;
/** A token with less than this left is never handed out, even when renewal fails. */
const MIN_USABLE_MS = 30_000;

export interface TokenCache {
  getToken(): Promise<string>;
  invalidate(token: string): void;
  readonly status: TokenStatus;
}

/** Wraps `fetchToken` with reuse until near expiry, single flight, and status for health. */
export function createTokenCache(
  fetchToken: () => Promise<AccessTokenValue>,
  options: TokenCacheOptions = {},
): TokenCache {
  const refreshMarginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  let cached: AccessTokenValue | undefined;
  let inFlight: Promise<AccessTokenValue> | undefined;
  const status: TokenStatus = { requests: 0, lastSuccessAt: null, lastFailureAt: null, lastFailure: null };

  async function fetchAndRecord(): Promise<AccessTokenValue> {
    status.requests++;
    try {
      const token = await fetchToken();
      status.lastSuccessAt = new Date().toISOString();
      return token;
    } catch (error) {
      status.lastFailureAt = new Date().toISOString();
      status.lastFailure = failureLabel(error);
      throw error;
    }
  }

  return {
    status,
    async getToken() {
      if (cached && cached.expiresOnTimestamp - Date.now() > refreshMarginMs) return cached.token;
      inFlight ??= fetchAndRecord().finally(() => {
        inFlight = undefined;
      });
      try {
        cached = await inFlight;
      } catch (error) {
        if (cached && cached.expiresOnTimestamp - Date.now() > MIN_USABLE_MS) return cached.token;
        throw error;
      }
      return cached.token;
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined;
    },
  };
}

/** `code` of an AdapterError-like error, else the error's class name. */
function failureLabel(error: unknown): string {
  const code = (error as { logCode?: unknown; code?: unknown }).logCode ?? (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'Error';
}
