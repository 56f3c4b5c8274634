/**
 * Use case behind the two admin-key functions of the bootstrap (docs/authentication.md#the-bootstrap):
 *
 * - `POST /api/app-user/authorize` `{ redirectUri, codeChallenge, state, loginHint? }` → `{ authorizationUrl }`:
 *   the URL the admin's browser opens. Stateless: the PKCE verifier and the state stay with the bootstrap, so
 *   the redemption may land on any instance.
 * - `POST /api/app-user/redeem` `{ code, codeVerifier, redirectUri }`: the app redeems the code with its own
 *   credential, makes one read call to the Referrals API with the new access token, and stores the refresh token
 *   in Key Vault unless Partner Center refused the token (a refused token must not replace a working one).
 *   Answers whether Partner Center accepts the token; never a token.
 */

import type { AppUserConsent } from '../auth/app-user-consent.js';
import { AdapterError } from '../core/errors.js';
import { type HttpAnswer, jsonResponse, problemResponse } from '../http/response.js';

export type ConsentResponse = HttpAnswer;

export interface ConsentApp {
  /** Throws `configuration_invalid` when the app is not in app-user mode or its settings are wrong. */
  consent(): AppUserConsent;
  /** One read call to the Referrals API with `accessToken`; throws the AdapterError an update would meet. */
  checkAccess(accessToken: string): Promise<void>;
  log(level: 'info' | 'warn' | 'error', record: { code: string; detail: string }): void;
}

const LOOPBACK_REDIRECT = /^http:\/\/(localhost|127\.0\.0\.1)(:\d{1,5})?(\/[\w\-./]*)?$/;
/** RFC 7636: 43 to 128 unreserved characters; a S256 challenge is 43 base64url characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
const CHALLENGE = /^[A-Za-z0-9\-_]{43}$/;
const STATE = /^[A-Za-z0-9\-._~]{16,128}$/;
const LOGIN_HINT = /^[^\s@]+@[^\s@]+$/;
/** Time the app gives the redemption of a sign-in and the write of its refresh token, together. */
const CONSENT_BUDGET_MS = 60_000;

function invalid(detail: string): ConsentResponse {
  return problemResponse(new AdapterError('invalid_event', detail));
}

function failed(error: unknown): ConsentResponse {
  const adapterError =
    error instanceof AdapterError
      ? error
      : new AdapterError('internal_error', 'The consent failed unexpectedly; see the function log.', { cause: error });
  return problemResponse(adapterError);
}

async function jsonObject(body: () => Promise<unknown>): Promise<Record<string, unknown> | undefined> {
  try {
    const value = await body();
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

export async function authorizeConsent(app: ConsentApp, body: () => Promise<unknown>): Promise<ConsentResponse> {
  const request = await jsonObject(body);
  if (!request) return invalid('The body must be a JSON object { redirectUri, codeChallenge, state, loginHint? }.');
  const redirectUri = text(request.redirectUri) ?? '';
  const codeChallenge = text(request.codeChallenge) ?? '';
  const state = text(request.state) ?? '';
  const loginHint = text(request.loginHint);
  if (!LOOPBACK_REDIRECT.test(redirectUri)) {
    return invalid('redirectUri must be a loopback address, http://localhost:<port> (the bootstrap listens there).');
  }
  if (!CHALLENGE.test(codeChallenge))
    return invalid('codeChallenge must be a PKCE S256 challenge (43 base64url characters).');
  if (!STATE.test(state)) return invalid('state must be 16 to 128 URL-safe characters.');
  if (loginHint !== undefined && !LOGIN_HINT.test(loginHint))
    return invalid('loginHint must be a user principal name.');
  try {
    const consent = app.consent();
    const authorizationUrl = consent.authorizationUrl({
      redirectUri,
      codeChallenge,
      state,
      ...(loginHint ? { loginHint } : {}),
    });
    return jsonResponse(200, { authorizationUrl, secretName: consent.secretName });
  } catch (error) {
    return failed(error);
  }
}

export async function redeemConsent(app: ConsentApp, body: () => Promise<unknown>): Promise<ConsentResponse> {
  const request = await jsonObject(body);
  if (!request) return invalid('The body must be a JSON object { code, codeVerifier, redirectUri }.');
  const code = text(request.code) ?? '';
  const codeVerifier = text(request.codeVerifier) ?? '';
  const redirectUri = text(request.redirectUri) ?? '';
  if (code === '' || code.length > 8192) return invalid('code must be the authorization code of the sign-in.');
  if (!VERIFIER.test(codeVerifier)) return invalid('codeVerifier must be the PKCE verifier (43 to 128 characters).');
  if (!LOOPBACK_REDIRECT.test(redirectUri)) return invalid('redirectUri must be the loopback address of the sign-in.');
  // One deadline for the redemption and the write (the test call has the client's own timeout).
  const abortSignal = AbortSignal.timeout(CONSENT_BUDGET_MS);
  let consent: AppUserConsent;
  let redeemed: Awaited<ReturnType<AppUserConsent['redeem']>>;
  try {
    consent = app.consent();
    redeemed = await consent.redeem({ code, codeVerifier, redirectUri }, { abortSignal });
  } catch (error) {
    const failure = failed(error);
    app.log('error', {
      code: error instanceof AdapterError ? (error.logCode ?? error.code) : 'APP_USER_CONSENT_FAILED',
      detail: `The bootstrap's sign-in could not be redeemed: ${error instanceof Error ? error.message : 'unknown error'}`,
    });
    return failure;
  }

  let partnerCenter: { accepted: boolean; code?: string; detail?: string };
  try {
    await app.checkAccess(redeemed.accessToken);
    partnerCenter = { accepted: true };
  } catch (error) {
    const adapterError = error instanceof AdapterError ? error : undefined;
    partnerCenter = {
      accepted: false,
      code: adapterError?.code ?? 'internal_error',
      detail: adapterError?.message ?? 'The test call to Partner Center failed unexpectedly.',
    };
  }
  // A token Partner Center refuses (no MFA, no role) must not replace a stored one that may still work. When
  // Partner Center could not be asked (unavailable, timeout), the consent is kept: the token itself is fine.
  const refused = partnerCenter.code === 'mfa_required' || partnerCenter.code === 'upstream_auth_failed';
  if (refused) {
    app.log('error', {
      code: partnerCenter.code === 'mfa_required' ? 'PARTNER_CENTER_MFA_REQUIRED' : 'APP_USER_CONSENT_REFUSED',
      detail: `Partner Center refused the token of the new sign-in; it was not stored. ${partnerCenter.detail ?? ''}`,
    });
    return jsonResponse(422, { stored: false, partnerCenter });
  }
  try {
    const stored = await redeemed.save({ abortSignal });
    app.log('info', {
      code: 'APP_USER_CONSENT_STORED',
      detail: `The bootstrap stored a new refresh token in Key Vault secret "${stored.secretName}" (version ${stored.version}); Partner Center ${partnerCenter.accepted ? 'accepts' : 'could not be asked about'} it.`,
    });
    return jsonResponse(200, { stored: true, ...stored, partnerCenter });
  } catch (error) {
    return failed(error);
  }
}
