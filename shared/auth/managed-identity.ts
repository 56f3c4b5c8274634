/**
 * The app's managed identity, through `@azure/identity` `ManagedIdentityCredential` (user-assigned when
 * `AZURE_CLIENT_ID` is set). The SDK loads on first use, not at module load, so a cold start that only
 * answers `/api/health` never pays for it.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { type AbortOptions, anySignal } from '../core/abort.js';
import { AdapterError } from '../core/errors.js';
import { createTokenCache, type TokenProvider } from './token-provider.js';

/** Upper bound for one token request to the identity endpoint (an inner bound under the caller's `abortSignal`). */
const TOKEN_TIMEOUT_MS = 10_000;
const credentials = new Map<string, Promise<TokenCredential>>();

/** One credential per identity and process (the SDK also caches tokens per process). */
export function managedIdentityCredential(clientId: string | undefined): Promise<TokenCredential> {
  const key = clientId ?? '';
  let credential = credentials.get(key);
  if (!credential) {
    credential = import('./azure-identity.js').then(({ ManagedIdentityCredential }) =>
      clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential(),
    );
    credentials.set(key, credential);
  }
  return credential;
}

/** A managed-identity token for `scope`, or an AdapterError saying what went wrong. */
export async function managedIdentityToken(
  clientId: string | undefined,
  scope: string,
  credential?: TokenCredential,
  options: AbortOptions = {},
): Promise<AccessToken> {
  try {
    const source = credential ?? (await managedIdentityCredential(clientId));
    const token = await source.getToken(scope, {
      abortSignal: anySignal(AbortSignal.timeout(TOKEN_TIMEOUT_MS), options.abortSignal),
    });
    if (!token) throw new Error('the credential returned no token');
    return { token: token.token, expiresOnTimestamp: token.expiresOnTimestamp };
  } catch (error) {
    throw managedIdentityError(error);
  }
}

/** Error class name and HTTP status only: identity error messages can quote endpoints and responses. */
function describeCredentialError(error: unknown): string {
  const name = error instanceof Error ? error.name : 'Error';
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  return typeof statusCode === 'number' ? `${name} (HTTP ${statusCode})` : name;
}

function managedIdentityError(error: unknown): AdapterError {
  if (error instanceof AdapterError) return error;
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500 && statusCode !== 429) {
    return new AdapterError(
      'upstream_auth_failed',
      `The managed identity endpoint refused the token request (HTTP ${statusCode}). Check that the function app has the identity assigned and that AZURE_CLIENT_ID names it.`,
      { cause: error, logCode: 'MANAGED_IDENTITY_REFUSED' },
    );
  }
  return new AdapterError(
    'upstream_unavailable',
    `Could not obtain a token from the managed identity endpoint (${describeCredentialError(error)}).`,
    { cause: error, retryAfterSeconds: 2, logCode: 'MANAGED_IDENTITY_UNAVAILABLE' },
  );
}

export interface ManagedIdentityTokenOptions {
  scope: string;
  /** Client id of a user-assigned identity (`AZURE_CLIENT_ID`); system-assigned when undefined. */
  clientId: string | undefined;
  refreshMarginMs?: number;
  /** For tests: a credential to use instead of `ManagedIdentityCredential`. */
  credential?: TokenCredential;
}

/** `PARTNER_CENTER_AUTH=managed-identity`: app-only tokens straight from the managed identity. */
export function createManagedIdentityTokenProvider(options: ManagedIdentityTokenOptions): TokenProvider {
  const cache = createTokenCache(
    ({ abortSignal }) => managedIdentityToken(options.clientId, options.scope, options.credential, { abortSignal }),
    options.refreshMarginMs === undefined ? {} : { refreshMarginMs: options.refreshMarginMs },
  );
  return {
    getToken: cache.getToken,
    invalidate: cache.invalidate,
    async health() {
      return { mode: 'managed-identity', ...cache.status, warnings: [] };
    },
  };
}
