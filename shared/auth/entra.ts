/**
 * The Microsoft Entra v2 token endpoint (`{authority}/{tenant}/oauth2/v2.0/token`), spoken directly:
 * the refresh-token grant of the Secure Application Model, and the device code flow of the bootstrap.
 * Errors come back as data (`EntraError`) so callers decide what `invalid_grant` means to them.
 * Every request has a timeout of its own, combined with the caller's `abortSignal` when there is one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { anySignal } from '../core/abort.js';

export type ClientAuthentication = { assertion: string } | { secret: string } | { none: true };

export interface EntraEndpoint {
  authorityHost: string;
  tenantId: string;
  clientId: string;
}

export interface TokenResponse {
  accessToken: string;
  expiresInSeconds: number;
  refreshToken: string | undefined;
}

/** An answer from Entra that is not a token: `error` is the OAuth error code (`invalid_grant`, …). */
export class EntraError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    /** AADSTS codes only, never the description text (which can echo request values). */
    readonly errorCodes: number[],
  ) {
    super(`Entra answered ${status} ${error}${errorCodes.length ? ` (AADSTS${errorCodes.join(', AADSTS')})` : ''}`);
    this.name = 'EntraError';
  }
}

/** Upper bound for one request to the token endpoint (Node's fetch would otherwise wait for minutes). */
export const ENTRA_REQUEST_TIMEOUT_MS = 10_000;

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

function endpointUrl(endpoint: EntraEndpoint, path: 'token' | 'devicecode'): string {
  return `${endpoint.authorityHost}/${encodeURIComponent(endpoint.tenantId)}/oauth2/v2.0/${path}`;
}

function withClientAuth(form: URLSearchParams, auth: ClientAuthentication): URLSearchParams {
  if ('assertion' in auth) {
    form.set('client_assertion_type', JWT_BEARER);
    form.set('client_assertion', auth.assertion);
  } else if ('secret' in auth) {
    form.set('client_secret', auth.secret);
  }
  return form;
}

/** Throws EntraError for an answer that is not 2xx; an aborted or timed-out request throws the signal's reason. */
export async function postForm(
  url: string,
  form: URLSearchParams,
  options: { abortSignal?: AbortSignal } = {},
): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form.toString(),
    signal: anySignal(AbortSignal.timeout(ENTRA_REQUEST_TIMEOUT_MS), options.abortSignal),
  });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // A gateway page or an empty body: classified by status below.
  }
  if (!response.ok) {
    const codes = Array.isArray(body.error_codes)
      ? body.error_codes.filter((c): c is number => typeof c === 'number')
      : [];
    throw new EntraError(response.status, typeof body.error === 'string' ? body.error : 'unknown_error', codes);
  }
  return body;
}

export function toTokenResponse(body: Record<string, unknown>): TokenResponse {
  if (typeof body.access_token !== 'string') throw new EntraError(200, 'no_access_token', []);
  const expiresIn = Number(body.expires_in);
  return {
    accessToken: body.access_token,
    expiresInSeconds: Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 3600,
    refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : undefined,
  };
}

/** `grant_type=refresh_token`: an access token for `scope` and, every time, a new refresh token. */
export async function redeemRefreshToken(
  endpoint: EntraEndpoint,
  request: { refreshToken: string; scope: string; auth: ClientAuthentication },
  options: { abortSignal?: AbortSignal } = {},
): Promise<TokenResponse> {
  const form = withClientAuth(
    new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: endpoint.clientId,
      refresh_token: request.refreshToken,
      scope: request.scope,
    }),
    request.auth,
  );
  return toTokenResponse(await postForm(endpointUrl(endpoint, 'token'), form, options));
}

export interface DeviceCode {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  intervalSeconds: number;
  expiresInSeconds: number;
  message: string;
}

export async function requestDeviceCode(endpoint: EntraEndpoint, scope: string): Promise<DeviceCode> {
  const body = await postForm(
    endpointUrl(endpoint, 'devicecode'),
    new URLSearchParams({ client_id: endpoint.clientId, scope }),
  );
  return {
    deviceCode: String(body.device_code),
    userCode: String(body.user_code),
    verificationUri: String(body.verification_uri),
    intervalSeconds: Number(body.interval) || 5,
    expiresInSeconds: Number(body.expires_in) || 900,
    message: typeof body.message === 'string' ? body.message : '',
  };
}

/** Polls until the user signs in; throws EntraError on anything but `authorization_pending`/`slow_down`. */
export async function pollDeviceCode(endpoint: EntraEndpoint, code: DeviceCode): Promise<TokenResponse> {
  let interval = code.intervalSeconds;
  const deadline = Date.now() + code.expiresInSeconds * 1000;
  for (;;) {
    await sleep(interval * 1000);
    try {
      const form = new URLSearchParams({
        grant_type: DEVICE_CODE_GRANT,
        client_id: endpoint.clientId,
        device_code: code.deviceCode,
      });
      return toTokenResponse(await postForm(endpointUrl(endpoint, 'token'), form));
    } catch (error) {
      if (!(error instanceof EntraError) || Date.now() > deadline) throw error;
      if (error.error === 'slow_down') interval += 5;
      else if (error.error !== 'authorization_pending') throw error;
    }
  }
}

/**
 * The authorization request of the bootstrap's browser sign-in (authorization code flow with PKCE,
 * https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow): the URL the admin's browser opens.
 */
export function authorizationUrl(
  endpoint: EntraEndpoint,
  request: { redirectUri: string; scope: string; state: string; codeChallenge: string; loginHint?: string },
): string {
  const url = new URL(`${endpoint.authorityHost}/${encodeURIComponent(endpoint.tenantId)}/oauth2/v2.0/authorize`);
  url.search = new URLSearchParams({
    client_id: endpoint.clientId,
    response_type: 'code',
    redirect_uri: request.redirectUri,
    response_mode: 'query',
    scope: request.scope,
    state: request.state,
    code_challenge: request.codeChallenge,
    code_challenge_method: 'S256',
    // A fresh sign-in, so the service account (not whoever is signed in to the browser) signs in, with MFA.
    prompt: 'login',
    ...(request.loginHint ? { login_hint: request.loginHint } : {}),
  }).toString();
  return url.href;
}

/** `grant_type=authorization_code`: redeems the code of the browser sign-in with the PKCE verifier. */
export async function redeemAuthorizationCode(
  endpoint: EntraEndpoint,
  request: { code: string; codeVerifier: string; redirectUri: string; scope: string; auth: ClientAuthentication },
  options: { abortSignal?: AbortSignal } = {},
): Promise<TokenResponse> {
  const form = withClientAuth(
    new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: endpoint.clientId,
      code: request.code,
      code_verifier: request.codeVerifier,
      redirect_uri: request.redirectUri,
      scope: request.scope,
    }),
    request.auth,
  );
  return toTokenResponse(await postForm(endpointUrl(endpoint, 'token'), form, options));
}
