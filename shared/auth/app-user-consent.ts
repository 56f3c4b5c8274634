/**
 * The consent step of the Secure Application Model, done by the deployed app itself
 * (docs/authentication.md#the-bootstrap): the admin's browser signs the service account in (authorization
 * code + PKCE, loopback redirect on the admin's machine), and the app, not the admin's machine, redeems the
 * code with its own credential (the managed-identity assertion, as every later redemption). So the refresh
 * token is confidential-client from birth, never leaves Azure, and the admin needs no Key Vault role.
 *
 * Entra binds a refresh token to the client type it was issued to: one from a public client (device code)
 * cannot be redeemed with a client assertion (AADSTS700025,
 * https://learn.microsoft.com/entra/identity-platform/refresh-tokens).
 *
 * Nothing here logs or returns a token: the caller gets the access token in memory (for one test call) and a
 * `save()` that writes the refresh token to Key Vault.
 */

import type { AbortOptions } from '../core/abort.js';
import { AdapterError } from '../core/errors.js';
import type { AppUserAuth } from './app-user.js';
import { REFRESH_TOKEN_CONTENT_TYPE } from './app-user.js';
import { createClientAuthentication } from './client-authentication.js';
import { authorizationUrl, EntraError, redeemAuthorizationCode } from './entra.js';
import type { SecretStore } from './key-vault.js';

export interface AuthorizeRequest {
  /** The bootstrap's loopback listener, `http://localhost:<port>` (Entra ignores the port when matching). */
  redirectUri: string;
  /** BASE64URL(SHA-256(code verifier)); the verifier stays with the bootstrap until the redemption. */
  codeChallenge: string;
  state: string;
  /** The service account's UPN, pre-filled on the sign-in page. */
  loginHint?: string;
}

export interface RedeemRequest {
  code: string;
  codeVerifier: string;
  redirectUri: string;
}

export interface RedeemedConsent {
  /** For the test call to Partner Center only; never returned or logged. */
  accessToken: string;
  /** Writes the refresh token to Key Vault as a new version of the secret the adapter reads. */
  save(options?: AbortOptions): Promise<{ secretName: string; version: string }>;
}

export interface AppUserConsent {
  readonly secretName: string;
  authorizationUrl(request: AuthorizeRequest): string;
  /** Throws an AdapterError whose message tells the partner admin what to fix. */
  redeem(request: RedeemRequest, options?: AbortOptions): Promise<RedeemedConsent>;
}

export interface AppUserConsentOptions {
  auth: AppUserAuth;
  /** Partner Center scope; `offline_access` is added so Entra returns a refresh token. */
  scope: string;
  managedIdentityClientId: string | undefined;
  secrets: SecretStore;
}

export function createAppUserConsent(options: AppUserConsentOptions): AppUserConsent {
  const { auth, secrets } = options;
  const endpoint = { authorityHost: auth.authorityHost, tenantId: auth.tenantId, clientId: auth.appClientId };
  const scope = `${options.scope} offline_access`;

  const clientAuthentication = createClientAuthentication(auth, options.managedIdentityClientId, secrets);

  return {
    secretName: auth.refreshTokenSecretName,
    authorizationUrl: (request) =>
      authorizationUrl(endpoint, {
        redirectUri: request.redirectUri,
        scope,
        state: request.state,
        codeChallenge: request.codeChallenge,
        ...(request.loginHint ? { loginHint: request.loginHint } : {}),
      }),

    async redeem(request, call = {}) {
      const clientAuth = await clientAuthentication(call);
      let tokens: Awaited<ReturnType<typeof redeemAuthorizationCode>>;
      try {
        tokens = await redeemAuthorizationCode(
          endpoint,
          {
            code: request.code,
            codeVerifier: request.codeVerifier,
            redirectUri: request.redirectUri,
            scope,
            auth: clientAuth,
          },
          call,
        );
      } catch (error) {
        throw redemptionFailure(error, auth);
      }
      const refreshToken = tokens.refreshToken;
      if (!refreshToken) {
        throw new AdapterError(
          'upstream_auth_failed',
          'Entra returned no refresh token: the app registration must be allowed to request offline_access (API permissions).',
          { logCode: 'APP_USER_CONSENT_NO_REFRESH_TOKEN' },
        );
      }
      return {
        accessToken: tokens.accessToken,
        async save(options = {}) {
          const stored = await secrets.set(
            auth.refreshTokenSecretName,
            refreshToken,
            REFRESH_TOKEN_CONTENT_TYPE,
            options,
          );
          return { secretName: auth.refreshTokenSecretName, version: stored.version };
        },
      };
    },
  };
}

/** What each refusal of the code redemption means for the partner admin (docs/authentication.md#what-each-failure-means). */
function redemptionFailure(error: unknown, auth: AppUserAuth): AdapterError {
  if (error instanceof AdapterError) return error;
  if (!(error instanceof EntraError) || error.status >= 500 || error.status === 429) {
    const what = error instanceof Error ? error.message : 'network error';
    return new AdapterError(
      'upstream_unavailable',
      `The Entra token endpoint is unavailable (${what}). Run the bootstrap again.`,
      {
        cause: error,
        logCode: 'ENTRA_UNAVAILABLE',
      },
    );
  }
  const codes = new Set(error.errorCodes);
  const say = (logCode: string, detail: string) =>
    new AdapterError('upstream_auth_failed', `${error.message}: ${detail}`, { cause: error, logCode });
  if (codes.has(50148)) {
    return say(
      'APP_USER_CONSENT_PKCE_MISMATCH',
      'the PKCE code verifier does not match the challenge of the sign-in. Run the bootstrap again.',
    );
  }
  if (codes.has(500112) || codes.has(50011)) {
    return say(
      'APP_USER_CONSENT_REDIRECT_MISMATCH',
      'the redirect URI differs from the one of the sign-in, or is not registered. Register http://localhost as a Web redirect URI on the app registration.',
    );
  }
  if (codes.has(70008) || codes.has(54005) || error.error === 'invalid_grant') {
    return say(
      'APP_USER_CONSENT_CODE_INVALID',
      'the sign-in code expired, was already used, or belongs to another app. Run the bootstrap again.',
    );
  }
  if (codes.has(7000218)) {
    return say(
      'APP_CLIENT_AUTH_FAILED',
      `app ${auth.appClientId} is a confidential client: set APP_CLIENT_AUTH=federated (the default) with the managed identity as its federated credential.`,
    );
  }
  if (error.error === 'invalid_client' || error.error === 'unauthorized_client') {
    return say(
      'APP_CLIENT_AUTH_FAILED',
      `Entra refused the app registration's credentials. Check that app ${auth.appClientId} exists in tenant ${auth.tenantId} (multi-tenant and consented there when it is another tenant) and that its federated credential names the managed identity (issuer, subject = the identity's object id, audience api://AzureADTokenExchange); a new credential can take a few minutes to work.`,
    );
  }
  return say('ENTRA_TOKEN_REQUEST_REFUSED', 'Entra refused the sign-in code.');
}
