/**
 * Access tokens for Partner Center, from the app's managed identity.
 *
 * `@azure/identity` loads on the first token request, not at module load, so a cold start that only
 * answers `/api/health` never pays for it. One token is reused across invocations until shortly before
 * it expires; concurrent events share one in-flight request.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { AdapterError } from './errors.js';

export interface TokenProvider {
  /** A bearer token for Partner Center. Throws an {@link AdapterError}. */
  getToken(signal?: AbortSignal): Promise<string>;
  /** Forget `token` (after Partner Center answered 401 to it), so the next call fetches another. */
  invalidate(token: string): void;
  readonly status: TokenStatus;
}

export interface TokenStatus {
  mode: 'managed-identity';
  /** Token requests sent to the identity endpoint by this process. */
  requests: number;
  lastSuccessAt: string | undefined;
  lastFailureAt: string | undefined;
  lastFailure: string | undefined;
}

export interface ManagedIdentityTokenOptions {
  scope: string;
  /** Client id of a user-assigned identity (`AZURE_CLIENT_ID`); system-assigned when undefined. */
  clientId: string | undefined;
  /** Start renewing this long before expiry. */
  refreshMarginMs?: number;
  /** For tests: a credential to use instead of `ManagedIdentityCredential`. */
  credential?: TokenCredential;
}

const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;
/** A token with less than this left is never handed out, even when renewal fails. */
const MIN_USABLE_MS = 30_000;

export function createManagedIdentityTokenProvider(options: ManagedIdentityTokenOptions): TokenProvider {
  const refreshMarginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  let credential: Promise<TokenCredential> | undefined;
  let cached: AccessToken | undefined;
  let inFlight: Promise<AccessToken> | undefined;
  const status: TokenStatus = {
    mode: 'managed-identity',
    requests: 0,
    lastSuccessAt: undefined,
    lastFailureAt: undefined,
    lastFailure: undefined,
  };

  async function loadCredential(): Promise<TokenCredential> {
    if (options.credential) return options.credential;
    const { ManagedIdentityCredential } = await import('@azure/identity');
    return options.clientId
      ? new ManagedIdentityCredential({ clientId: options.clientId })
      : new ManagedIdentityCredential();
  }

  async function fetchToken(signal?: AbortSignal): Promise<AccessToken> {
    credential ??= loadCredential();
    status.requests++;
    try {
      const token = await (await credential).getToken(options.scope, signal ? { abortSignal: signal } : {});
      if (!token) throw new Error('the credential returned no token');
      status.lastSuccessAt = new Date().toISOString();
      return token;
    } catch (error) {
      status.lastFailureAt = new Date().toISOString();
      status.lastFailure = describeCredentialError(error);
      throw toAdapterError(error);
    }
  }

  return {
    status,
    async getToken(signal) {
      const now = Date.now();
      if (cached && cached.expiresOnTimestamp - now > refreshMarginMs) return cached.token;
      inFlight ??= fetchToken(signal).finally(() => {
        inFlight = undefined;
      });
      try {
        cached = await inFlight;
      } catch (error) {
        // Renewal failed but the current token is still good for a while: keep working with it.
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

/** Error class name and HTTP status only: identity error messages can quote endpoints and responses. */
function describeCredentialError(error: unknown): string {
  const name = error instanceof Error ? error.name : 'Error';
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  return typeof statusCode === 'number' ? `${name} (HTTP ${statusCode})` : name;
}

function toAdapterError(error: unknown): AdapterError {
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500 && statusCode !== 429) {
    return new AdapterError(
      'upstream_auth_failed',
      `The managed identity endpoint refused the token request (HTTP ${statusCode}). Check that the function app has the identity assigned and that AZURE_CLIENT_ID names it.`,
      { cause: error },
    );
  }
  return new AdapterError(
    'upstream_unavailable',
    `Could not obtain a token from the managed identity endpoint (${describeCredentialError(error)}).`,
    { cause: error, retryAfterSeconds: 5 },
  );
}
