/**
 * `PARTNER_CENTER_AUTH=app-user`: delegated (App+User) tokens through the Secure Application Model,
 * with the managed identity as the only stored credential (docs/partner-center-api.md#secure-application-model).
 *
 * 1. Read the partner's refresh token from Key Vault (newest version) with the managed identity.
 * 2. Redeem it at Entra (`grant_type=refresh_token`), authenticating the app registration with a
 *    managed-identity token for `api://AzureADTokenExchange` as client assertion (a federated identity
 *    credential), or a client secret kept in Key Vault.
 * 3. Every redemption returns a new refresh token: write it back as a new secret version at once (the
 *    90-day lifetime rolls only if it is kept). If the write fails, keep it in memory and retry the write
 *    on the next redemption: the old version stays valid, Entra does not revoke used refresh tokens.
 * 4. Cache the access token; concurrent events share one redemption (single flight per instance). The
 *    redemption runs under the cache's own bound, not under any one event's deadline: an event that
 *    gives up stops waiting, the redemption goes on for the others. Once Entra has answered, the write-back
 *    runs under Key Vault's own timeout only, so a rotation is written or kept in memory, never dropped.
 * On `invalid_grant`, re-read the newest version (another instance may have rotated it) and retry once;
 * if that fails too, the token is dead: fail fast, without calling Entra again, until Key Vault holds a
 * new version (the bootstrap was re-run).
 */
import type { AccessToken } from '@azure/identity';
import type { AuthConfig } from '../config.js';
import { type AbortOptions, isAbortError } from '../core/abort.js';
import { AdapterError } from '../core/errors.js';
import { type ClientAuthentication, EntraError, redeemRefreshToken } from './entra.js';
import type { SecretStore, StoredSecret } from './key-vault.js';
import { managedIdentityToken } from './managed-identity.js';
import { createTokenCache, type RefreshTokenHealth, type TokenHealth, type TokenProvider } from './token-provider.js';

export type AppUserAuth = Extract<AuthConfig, { mode: 'app-user' }>;

/** Token exchange audience for a federated identity credential backed by a managed identity. */
export const TOKEN_EXCHANGE_SCOPE = 'api://AzureADTokenExchange/.default';
export const REFRESH_TOKEN_CONTENT_TYPE = 'application/vnd.partner-center.refresh-token';
const REFRESH_TOKEN_LIFETIME_DAYS = 90;
export const REFRESH_TOKEN_WARNING_DAYS = 14;
/** After a confirmed dead refresh token, Key Vault is checked again at most this often. */
const DEAD_TOKEN_RECHECK_MS = 60_000;
const CLIENT_SECRET_TTL_MS = 60 * 60_000;
const DAY_MS = 86_400_000;

export type TokenLogger = (level: 'info' | 'warn' | 'error', record: { code: string; detail: string }) => void;

export interface AppUserTokenOptions {
  auth: AppUserAuth;
  /** Partner Center scope; `offline_access` is added so Entra returns a new refresh token. */
  scope: string;
  /** User-assigned managed identity (`AZURE_CLIENT_ID`), or undefined for system-assigned. */
  managedIdentityClientId: string | undefined;
  secrets: SecretStore;
  log?: TokenLogger;
  refreshMarginMs?: number;
  /** How long a refresh token Entra refused stays refused before Key Vault is checked again (60 s). */
  deadTokenRecheckMs?: number;
}

const defaultLog: TokenLogger = (level, record) => {
  const line = JSON.stringify({ event: 'partner-center-token', level, ...record });
  (level === 'error' ? console.error : level === 'warn' ? console.warn : console.info)(line);
};

export function createAppUserTokenProvider(options: AppUserTokenOptions): TokenProvider {
  const { auth, secrets } = options;
  const log = options.log ?? defaultLog;
  const recheckMs = options.deadTokenRecheckMs ?? DEAD_TOKEN_RECHECK_MS;
  const endpoint = { authorityHost: auth.authorityHost, tenantId: auth.tenantId, clientId: auth.appClientId };
  /** A rotated refresh token Key Vault does not have yet (its write failed). */
  let unsaved: string | undefined;
  /** Metadata of the newest stored version we know of, for health. */
  let stored: { version: string; createdOn: Date | undefined; readAt: number } | undefined;
  let dead: { version: string; recheckAt: number } | undefined;
  let clientSecret: { value: string; until: number } | undefined;
  let lastWriteBackFailure: string | null = null;

  const remember = (secret: StoredSecret) => {
    stored = { version: secret.version, createdOn: secret.createdOn, readAt: Date.now() };
  };

  async function readStored(call: AbortOptions): Promise<StoredSecret> {
    const secret = await secrets.get(auth.refreshTokenSecretName, call);
    if (!secret?.value) {
      throw new AdapterError(
        'upstream_auth_failed',
        `Key Vault has no refresh token in the secret "${auth.refreshTokenSecretName}". A partner admin must run "npm run auth:bootstrap" once (see docs/authentication.md).`,
        { logCode: 'PARTNER_CENTER_REFRESH_TOKEN_MISSING' },
      );
    }
    remember(secret);
    return secret;
  }

  async function clientAuthentication(call: AbortOptions): Promise<ClientAuthentication> {
    if (auth.clientAuth === 'none') return { none: true };
    if (auth.clientAuth === 'federated') {
      const assertion = await managedIdentityToken(
        options.managedIdentityClientId,
        TOKEN_EXCHANGE_SCOPE,
        undefined,
        call,
      );
      return { assertion: assertion.token };
    }
    if (!clientSecret || clientSecret.until < Date.now()) {
      const name = auth.clientSecretName ?? '';
      const secret = await secrets.get(name, call);
      if (!secret?.value) {
        throw new AdapterError(
          'upstream_auth_failed',
          `Key Vault has no client secret in "${name}" (APP_CLIENT_SECRET_NAME).`,
          {
            logCode: 'APP_CLIENT_SECRET_MISSING',
          },
        );
      }
      clientSecret = { value: secret.value, until: Date.now() + CLIENT_SECRET_TTL_MS };
    }
    return { secret: clientSecret.value };
  }

  function refreshTokenInvalid(version: string): AdapterError {
    return new AdapterError(
      'upstream_auth_failed',
      'Entra refused the stored Partner Center refresh token (expired, revoked, or unused for 90 days). A partner admin must run "npm run auth:bootstrap" to sign in again with MFA; the adapter picks up the new token by itself.',
      { logCode: 'PARTNER_CENTER_REFRESH_TOKEN_INVALID', extensions: { problems: [`secret version ${version}`] } },
    );
  }

  function entraFailure(error: unknown): AdapterError {
    if (error instanceof AdapterError) return error;
    if (error instanceof EntraError && error.status < 500 && error.status !== 429) {
      const clientProblem = error.error === 'invalid_client' || error.error === 'unauthorized_client';
      return new AdapterError(
        'upstream_auth_failed',
        clientProblem
          ? `Entra refused the app registration's credentials (${error.error}). Check the federated identity credential for the managed identity (or APP_CLIENT_SECRET_NAME) on app ${auth.appClientId}.`
          : `Entra refused the token request (${error.message}).`,
        { cause: error, logCode: clientProblem ? 'APP_CLIENT_AUTH_FAILED' : 'ENTRA_TOKEN_REQUEST_REFUSED' },
      );
    }
    const what = isAbortError(error) ? 'no answer in time' : error instanceof Error ? error.message : 'network error';
    return new AdapterError('upstream_unavailable', `The Entra token endpoint is unavailable (${what}).`, {
      cause: error,
      retryAfterSeconds: 2,
      logCode: 'ENTRA_UNAVAILABLE',
    });
  }

  /** Redeem `refreshToken` and persist the rotated one. Throws EntraError for `invalid_grant`. */
  async function redeem(refreshToken: string, call: AbortOptions): Promise<AccessToken> {
    const clientAuth = await clientAuthentication(call);
    let result: Awaited<ReturnType<typeof redeemRefreshToken>>;
    try {
      result = await redeemRefreshToken(
        endpoint,
        { refreshToken, scope: `${options.scope} offline_access`, auth: clientAuth },
        call,
      );
    } catch (error) {
      if (error instanceof EntraError && error.error === 'invalid_grant') throw error;
      throw entraFailure(error);
    }
    dead = undefined;
    if (result.refreshToken) {
      unsaved = result.refreshToken;
      // Not under `call`: Entra has rotated, so the write gets Key Vault's own timeout and nothing else.
      try {
        remember(await secrets.set(auth.refreshTokenSecretName, result.refreshToken, REFRESH_TOKEN_CONTENT_TYPE));
        unsaved = undefined;
        lastWriteBackFailure = null;
      } catch (error) {
        lastWriteBackFailure = new Date().toISOString();
        const reason = error instanceof AdapterError ? error.message : 'unknown error';
        log('error', {
          code: 'PARTNER_CENTER_REFRESH_TOKEN_WRITEBACK_FAILED',
          detail: `The rotated refresh token could not be written to Key Vault; it is kept in memory and written on the next redemption. ${reason}`,
        });
      }
    }
    return { token: result.accessToken, expiresOnTimestamp: Date.now() + result.expiresInSeconds * 1000 };
  }

  async function fetchAccessToken(call: AbortOptions): Promise<AccessToken> {
    if (dead && Date.now() < dead.recheckAt) throw refreshTokenInvalid(dead.version);
    const candidate = unsaved ? { value: unsaved, version: 'unsaved-rotation' } : await readStored(call);
    if (dead && candidate.version === dead.version) {
      dead.recheckAt = Date.now() + recheckMs;
      throw refreshTokenInvalid(dead.version);
    }
    try {
      return await redeem(candidate.value, call);
    } catch (error) {
      if (!(error instanceof EntraError)) throw error;
    }
    // invalid_grant: another instance may have rotated the token since we read it. Retry once with the newest.
    unsaved = undefined;
    const newest = await readStored(call);
    if (newest.version !== candidate.version) {
      try {
        return await redeem(newest.value, call);
      } catch (error) {
        if (!(error instanceof EntraError)) throw error;
      }
    }
    dead = { version: newest.version, recheckAt: Date.now() + recheckMs };
    const failure = refreshTokenInvalid(newest.version);
    log('error', { code: 'PARTNER_CENTER_REFRESH_TOKEN_INVALID', detail: failure.message });
    throw failure;
  }

  const cache = createTokenCache(
    fetchAccessToken,
    options.refreshMarginMs === undefined ? {} : { refreshMarginMs: options.refreshMarginMs },
  );

  async function refreshTokenHealth(): Promise<{ refreshToken: RefreshTokenHealth | null; warnings: string[] }> {
    const warnings: string[] = [];
    if (!stored || Date.now() - stored.readAt > 5 * 60_000) {
      try {
        const secret = await secrets.get(auth.refreshTokenSecretName);
        if (secret) remember(secret);
        else
          warnings.push(
            `Key Vault has no refresh token in "${auth.refreshTokenSecretName}": run "npm run auth:bootstrap".`,
          );
      } catch (error) {
        warnings.push(error instanceof AdapterError ? error.message : 'Key Vault could not be read.');
      }
    }
    if (dead) warnings.push(refreshTokenInvalid(dead.version).message);
    if (lastWriteBackFailure) {
      warnings.push(`The last rotated refresh token could not be written to Key Vault (${lastWriteBackFailure}).`);
    }
    const createdOn = stored?.createdOn;
    if (!createdOn) return { refreshToken: null, warnings };
    const ageDays = (Date.now() - createdOn.getTime()) / DAY_MS;
    const daysLeft = REFRESH_TOKEN_LIFETIME_DAYS - ageDays;
    if (daysLeft <= REFRESH_TOKEN_WARNING_DAYS) {
      warnings.push(
        `The stored refresh token was last rotated ${Math.round(ageDays)} days ago and expires in ${Math.max(0, Math.round(daysLeft))} days unless it is redeemed (any update event redeems it). If it expires, run "npm run auth:bootstrap".`,
      );
    }
    return {
      refreshToken: {
        storedAt: createdOn.toISOString(),
        ageDays: Math.round(ageDays * 10) / 10,
        expiresAt: new Date(createdOn.getTime() + REFRESH_TOKEN_LIFETIME_DAYS * DAY_MS).toISOString(),
        daysLeft: Math.round(daysLeft * 10) / 10,
      },
      warnings,
    };
  }

  return {
    getToken: cache.getToken,
    invalidate: cache.invalidate,
    async health(): Promise<TokenHealth> {
      return { mode: 'app-user', ...cache.status, ...(await refreshTokenHealth()) };
    },
  };
}
