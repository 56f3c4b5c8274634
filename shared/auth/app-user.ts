/**
 * `PARTNER_CENTER_AUTH=app-user`: delegated (App+User) tokens through the Secure Application Model,
 * with the managed identity as the only stored credential (docs/partner-center-api.md#secure-application-model).
 *
 * 1. Read the partner's refresh token from Key Vault (newest version) with the managed identity.
 * 2. Redeem it at Entra (`grant_type=refresh_token`), authenticating the app registration with a
 *    managed-identity token for `api://AzureADTokenExchange` as client assertion (a federated identity
 *    credential), or a client secret kept in Key Vault.
 * 3. Every redemption returns a new refresh token. Write it back as a new secret version only when the
 *    stored version is older than `writeBackIntervalMs` (see `mustWriteBack`); otherwise drop it and keep
 *    redeeming the stored one. If the write fails, keep it in memory and retry the write on the next
 *    redemption: the old version stays valid, Entra does not revoke used refresh tokens.
 * 4. Cache the access token; concurrent events share one redemption (single flight per instance). The
 *    redemption runs under the cache's own bound, not under any one event's deadline: an event that
 *    gives up stops waiting, the redemption goes on for the others. Once Entra has answered, the write-back
 *    runs under Key Vault's own timeout only, so a rotation is written or kept in memory, never dropped.
 * On `invalid_grant`, re-read the newest version (another instance may have rotated it) and retry once.
 * Then the AADSTS code says which failure it is (entra-refusals.ts): a dead token fails fast, without
 * calling Entra again, until Key Vault holds a new version (the bootstrap was re-run); a refusal that can
 * lift by itself (Conditional Access, consent, a disabled user, a federated credential still propagating)
 * also fails fast, but Entra is probed again on a growing backoff.
 */
import type { AccessToken } from '@azure/identity';
import type { AuthConfig } from '../config.js';
import { type AbortOptions, isAbortError } from '../core/abort.js';
import { AdapterError } from '../core/errors.js';
import { createClientAuthentication } from './client-authentication.js';
import { EntraError, redeemRefreshToken } from './entra.js';
import { classifyEntraRefusal, type EntraRefusal, isClassifiedRefusal } from './entra-refusals.js';
import type { SecretStore, StoredSecret } from './key-vault.js';
import {
  createTokenCache,
  type RefreshTokenHealth,
  type RenewalStatus,
  type TokenHealth,
  type TokenProvider,
} from './token-provider.js';

export type AppUserAuth = Extract<AuthConfig, { mode: 'app-user' }>;

export const REFRESH_TOKEN_CONTENT_TYPE = 'application/vnd.partner-center.refresh-token';
const REFRESH_TOKEN_LIFETIME_DAYS = 90;
export const REFRESH_TOKEN_WARNING_DAYS = 14;
/** After a confirmed dead refresh token, Key Vault is checked again at most this often. */
const DEAD_TOKEN_RECHECK_MS = 60_000;
/** After a refusal that can lift by itself, Entra is probed again after 1, 2, 4, 8, then every 15 minutes. */
const RETRY_LATER_BASE_MS = 60_000;
const RETRY_LATER_MAX_MS = 15 * 60_000;
/** Default of REFRESH_TOKEN_WRITE_INTERVAL_MINUTES. */
export const DEFAULT_WRITE_BACK_INTERVAL_MS = 12 * 60 * 60_000;
const DAY_MS = 86_400_000;
/** The version label of a rotated token that Key Vault does not have yet. */
const UNSAVED = 'unsaved-rotation';

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
  /** First and longest wait before Entra is probed again after a refusal that can lift by itself (1 min, 15 min). */
  retryLaterMs?: { baseMs: number; maxMs: number };
}

const defaultLog: TokenLogger = (level, record) => {
  const line = JSON.stringify({ event: 'partner-center-token', level, ...record });
  (level === 'error' ? console.error : level === 'warn' ? console.warn : console.info)(line);
};

export function createAppUserTokenProvider(options: AppUserTokenOptions): TokenProvider {
  const { auth, secrets } = options;
  const log = options.log ?? defaultLog;
  const recheckMs = options.deadTokenRecheckMs ?? DEAD_TOKEN_RECHECK_MS;
  const retryLater = options.retryLaterMs ?? { baseMs: RETRY_LATER_BASE_MS, maxMs: RETRY_LATER_MAX_MS };
  const writeBackIntervalMs = auth.writeBackIntervalMs ?? DEFAULT_WRITE_BACK_INTERVAL_MS;
  const endpoint = { authorityHost: auth.authorityHost, tenantId: auth.tenantId, clientId: auth.appClientId };
  /** A rotated refresh token Key Vault does not have yet (its write failed). */
  let unsaved: string | undefined;
  /** Metadata of the newest stored version we know of, for health. */
  let stored: { version: string; createdOn: Date | undefined; readAt: number } | undefined;
  /**
   * Entra refused the stored token. Until `recheckAt` every call fails fast; then Key Vault is read again:
   * a new version is tried at once, the same version only once `probeAt` has passed (never for a dead token).
   */
  let refused:
    | {
        version: string;
        refusal: EntraRefusal;
        failure: AdapterError;
        recheckAt: number;
        probeAt: number;
        probes: number;
      }
    | undefined;
  const renewal: RenewalStatus = { lastRenewalAt: null, lastRenewalFailure: null };
  const clientAuthentication = createClientAuthentication(auth, options.managedIdentityClientId, secrets);
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

  /** Records Entra's refusal of `version` (the latch above) and returns the event's failure. Logs each refusal once. */
  function refuse(error: EntraError, version: string): AdapterError {
    const refusal = classifyEntraRefusal(error, auth.appClientId);
    const failure = new AdapterError('upstream_auth_failed', refusal.detail, {
      cause: error,
      logCode: refusal.logCode,
      extensions: { problems: [`secret version ${version}`] },
    });
    const probes = refused && refused.refusal.logCode === refusal.logCode ? refused.probes + 1 : 0;
    const now = Date.now();
    refused = {
      version,
      refusal,
      failure,
      recheckAt: now + recheckMs,
      probeAt:
        refusal.recovery === 'new-sign-in'
          ? Number.POSITIVE_INFINITY
          : now + Math.min(retryLater.maxMs, retryLater.baseMs * 2 ** probes),
      probes,
    };
    log('error', { code: refusal.logCode, detail: refusal.detail });
    return failure;
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

  /**
   * Whether the rotated token must be written back after redeeming `redeemed`. Entra rotates the refresh
   * token on every redemption but does not revoke the one redeemed
   * (https://learn.microsoft.com/entra/identity-platform/refresh-tokens): the stored version keeps
   * working until its own lifetime ends, 90 days of inactivity counted at the latest from when it was
   * issued, which is when it was written (`createdOn`). Dropping the rotation is therefore safe only while
   * the stored token is young, and it stays young: as soon as it is older than the interval (at most 7
   * days, validated in config.ts), the next redemption writes. A token close to expiry is thus always
   * written, by whichever redemption comes first (an event or the keep-alive timer). A token not read
   * from Key Vault (a rotation whose write failed) or of unknown age is always written.
   */
  function mustWriteBack(redeemed: StoredSecret): boolean {
    if (redeemed.version === UNSAVED || !redeemed.createdOn) return true;
    return Date.now() - redeemed.createdOn.getTime() >= writeBackIntervalMs;
  }

  /** Redeem `redeemed` and persist the rotated one when it must be. Throws EntraError for a classified refusal. */
  async function redeem(redeemed: StoredSecret, call: AbortOptions): Promise<AccessToken> {
    const clientAuth = await clientAuthentication(call);
    let result: Awaited<ReturnType<typeof redeemRefreshToken>>;
    try {
      result = await redeemRefreshToken(
        endpoint,
        { refreshToken: redeemed.value, scope: `${options.scope} offline_access`, auth: clientAuth },
        call,
      );
    } catch (error) {
      if (error instanceof EntraError && isClassifiedRefusal(error)) throw error;
      throw entraFailure(error);
    }
    refused = undefined;
    if (result.refreshToken && mustWriteBack(redeemed)) {
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
    if (refused && Date.now() < refused.recheckAt) throw refused.failure;
    const candidate: StoredSecret = unsaved
      ? { value: unsaved, version: UNSAVED, createdOn: undefined }
      : await readStored(call);
    if (refused && candidate.version === refused.version && Date.now() < refused.probeAt) {
      refused.recheckAt = Date.now() + recheckMs;
      throw refused.failure;
    }
    let refusal: EntraError;
    try {
      return await redeem(candidate, call);
    } catch (error) {
      if (!(error instanceof EntraError)) throw error;
      refusal = error;
    }
    if (classifyEntraRefusal(refusal, auth.appClientId).recovery === 'retry-later') {
      throw refuse(refusal, candidate.version);
    }
    // A dead token: another instance may have rotated it since we read it. Retry once with the newest.
    unsaved = undefined;
    const newest = await readStored(call);
    if (newest.version !== candidate.version) {
      try {
        return await redeem(newest, call);
      } catch (error) {
        if (!(error instanceof EntraError)) throw error;
        refusal = error;
      }
    }
    throw refuse(refusal, newest.version);
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
    if (refused) warnings.push(refused.failure.message);
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
    async renew() {
      // A redemption now, whatever the cache holds: the stored refresh token is used (and written back
      // when it is old enough), which is what keeps it alive through a quiet season.
      try {
        await cache.refresh();
        renewal.lastRenewalAt = new Date().toISOString();
        renewal.lastRenewalFailure = null;
      } catch (error) {
        renewal.lastRenewalFailure = cache.status.lastFailure ?? 'Error';
        throw error;
      }
    },
    async health(): Promise<TokenHealth> {
      return { mode: 'app-user', ...cache.status, ...renewal, ...(await refreshTokenHealth()) };
    },
  };
}
