/**
 * A loopback Microsoft Entra (v2) token endpoint for the Secure Application Model path
 * (docs/partner-center-api.md#secure-application-model): an app registration redeems a stored refresh
 * token for an App+User access token to `https://api.partner.microsoft.com` and gets a rotated refresh token back.
 *
 *   GET  /{tenant}/oauth2/v2.0/authorize    the browser sign-in of the bootstrap (authorization code + PKCE): the
 *                                           configured user signs in at once and the browser is redirected to the
 *                                           registered redirect URI with `code` and `state`
 *   POST /{tenant}/oauth2/v2.0/token        grant_type=authorization_code | refresh_token | urn:ietf:params:oauth:grant-type:device_code
 *   POST /{tenant}/oauth2/v2.0/devicecode   client_id, scope (the opt-in device code bootstrap; approveDevice() plays the admin)
 *
 * As strict as Entra on the points the bootstrap depends on:
 * - a refresh token keeps the client type it was issued to: public when the grant that created it presented no
 *   client credential (device code), confidential otherwise. A public one redeemed with a client assertion or
 *   secret is refused with AADSTS700025, a confidential one redeemed without a credential with AADSTS7000218
 *   (https://learn.microsoft.com/entra/identity-platform/refresh-tokens,
 *   https://learn.microsoft.com/entra/identity-platform/reference-error-codes);
 * - device code needs "Allow public client flows" (`allowPublicClient`);
 * - an authorization code is single-use, short-lived, and redeemed only by the client it was issued to, with the
 *   redirect URI of the authorization request and the PKCE verifier of its challenge (S256); the redirect URI must
 *   be registered on the Web platform (`redirectUris`; for `http://localhost` the port is ignored,
 *   https://learn.microsoft.com/entra/identity-platform/reply-url);
 * - every token records whether the sign-in did MFA (`amr`), and access tokens redeemed from a refresh token carry
 *   the sign-in's `amr` on (`accessTokenClaims()`): the Partner Center sandbox refuses an App+User token without
 *   MFA the way Partner Center does.
 *
 * HTTPS on 127.0.0.1 with the test certificate (dev/emulators/test-tls.ts): @azure/identity reads AZURE_AUTHORITY_HOST too
 * and refuses a non-https one, so the emulator speaks TLS like Entra.
 * Error bodies have Entra's shape and AADSTS codes, so the app's error handling sees what it will see in
 * production. As in Entra, a redeemed refresh token stays valid: every redemption returns a NEW refresh token
 * and the old one keeps working until revoked. Nothing here logs a token.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readBody } from '../support/read-body.js';
import { testServerTls } from './test-tls.js';

export interface EntraEmulatorOptions {
  port?: number;
  tenantId: string;
  /** The app registration. */
  clientId: string;
  // Client authentication the app registration accepts:
  /** client_assertion (urn:ietf:params:oauth:client-assertion-type:jwt-bearer); absent: assertions are refused. */
  acceptAssertion?: (jwt: string) => boolean;
  /** client_secret; absent: secrets are refused. */
  clientSecret?: string;
  /** "Allow public client flows": device code, and redemptions with no client authentication. Default false. */
  allowPublicClient?: boolean;
  /** Redirect URIs registered on the Web platform (for the authorization code flow). Default none. */
  redirectUris?: string[];
  /** Default 3599. */
  accessTokenLifetimeSeconds?: number;
}

/**
 * Why Entra refuses a refresh token, with the AADSTS code it answers
 * (https://learn.microsoft.com/entra/identity-platform/reference-error-codes). All come back as
 * `400 invalid_grant` on the token endpoint.
 */
export type GrantRefusal =
  | 'revoked' // 50173 FreshTokenNeeded: revoked (revokeSignInSessions, password reset)
  | 'inactive' // 700082: expired after 90 days without use
  | 'sign-in-frequency' // 70043: a Conditional Access sign-in frequency policy
  | 'conditional-access' // 53003: blocked by a Conditional Access policy
  | 'consent-missing' // 65001: consent removed
  | 'user-disabled' // 50057
  | 'mfa-required'; // 50076

/** No federated identity credential matches the assertion (a mismatch, or one that has not propagated yet). */
export type FederationRefusal = 70021 | 700211 | 700212 | 700213;

export interface Redemption {
  grantType: string;
  refreshToken?: string;
  /** `code` of an authorization_code grant. */
  code?: string;
  clientAuth: 'assertion' | 'secret' | 'none';
  scope: string;
  /** The HTTP status the emulator answered with (200, 400, 401, or an injected failure); 0 while it hangs. */
  status: number;
}

export interface EntraEmulator {
  /** e.g. https://127.0.0.1:41234 (no trailing slash). */
  readonly authorityHost: string;
  /**
   * Plant a valid refresh token (what the bootstrap would have produced). Returns it. By default issued to the
   * confidential client after an MFA sign-in.
   */
  issueRefreshToken(options?: { client?: ClientType; mfa?: boolean }): string;
  /** Who signs in at the authorize endpoint from now on: with MFA (the default) or with a password only. */
  signInWith(options: { mfa: boolean }): void;
  /** The claims the emulator bound to an access token it issued (`amr`: `['pwd', 'mfa']` or `['pwd']`). */
  accessTokenClaims(token: string): { amr: string[] } | undefined;
  /** Make a refresh token invalid (revoked/expired): redeeming it gives invalid_grant. */
  revoke(refreshToken: string): void;
  /** Revoke every refresh token issued so far (a password reset); later ones are valid again. */
  revokeAll(): void;
  /** Refuse `refreshToken` for `reason` (its AADSTS code and text), for good. */
  refuse(refreshToken: string, reason: GrantRefusal): void;
  /**
   * Refuse every refresh-token redemption for `reason` until called with null: a condition of the user or
   * tenant (a Conditional Access block, consent removed, the user disabled) rather than of one token.
   */
  refuseGrants(reason: GrantRefusal | null): void;
  /** Answer every client assertion with `code` until called with null (a federated credential not yet propagated). */
  refuseAssertions(code: FederationRefusal | null): void;
  /** Issued by this emulator, for the Partner Center audience, and not yet expired. */
  isAccessToken(token: string): boolean;
  /** Every request to the token endpoint, in order, including refused and injected-failure ones. */
  readonly redemptions: ReadonlyArray<Redemption>;
  /** Answer the next `count` token requests with `status` (default 503) and `temporarily_unavailable`. */
  failNext(count: number, status?: number): void;
  /**
   * `true`: from now on the token endpoint reads each request, records it, and never answers (a hung
   * Entra). `false`: it answers again, and the connections left hanging are dropped.
   */
  hang(on: boolean): void;
  /** The signed-in admin completes the device code flow. Throws for an unknown user code. */
  approveDevice(userCode: string): void;
  close(): Promise<void>;
}

const PARTNER_SCOPES = [
  'https://api.partner.microsoft.com/.default',
  'https://api.partner.microsoft.com/user_impersonation',
];
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const DEVICE_CODE_LIFETIME_SECONDS = 900;
const MAX_BODY_BYTES = 64 * 1024;
/** Consonants only: no vowels (no accidental words) and no look-alike digits. */
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';

export type ClientType = 'public' | 'confidential';

interface DeviceAuthorization {
  userCode: string;
  scope: string;
  expiresAt: number;
  approved: boolean;
}

interface AuthorizationCode {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  scope: string;
  amr: string[];
  expiresAt: number;
}

interface RefreshTokenState {
  valid: boolean;
  client: ClientType;
  amr: string[];
}

const AMR_MFA = ['pwd', 'mfa'];
const AMR_PASSWORD = ['pwd'];
/** Entra's authorization codes live about 10 minutes. */
const AUTHORIZATION_CODE_LIFETIME_MS = 10 * 60_000;

interface EntraError {
  status: number;
  error: string;
  description: string;
  code?: number;
}

/** Entra's timestamp format: `2026-04-01 12:34:56Z`. */
function entraTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

function scopesOf(scope: string): string[] {
  return scope.split(/\s+/).filter((s) => s !== '');
}

function newUserCode(): string {
  const bytes = randomBytes(8);
  const chars = Array.from(bytes, (b) => USER_CODE_ALPHABET[b % USER_CODE_ALPHABET.length]);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

export async function startEntraEmulator(options: EntraEmulatorOptions): Promise<EntraEmulator> {
  const tenantId = options.tenantId.toLowerCase();
  const lifetimeSeconds = options.accessTokenLifetimeSeconds ?? 3599;
  /** Refresh token -> its state. Revoked tokens stay in the map with `valid: false`. */
  const refreshTokens = new Map<string, RefreshTokenState>();
  /** Access token -> expiry (ms since epoch) and the sign-in's `amr`. */
  const accessTokens = new Map<string, { expiresAt: number; amr: string[] }>();
  const devices = new Map<string, DeviceAuthorization>();
  const codes = new Map<string, AuthorizationCode>();
  let signInAmr = AMR_MFA;
  /** Refresh tokens refused for a given reason (revoke() without a reason stays the generic 70000). */
  const refusedTokens = new Map<string, GrantRefusal>();
  let grantRefusal: GrantRefusal | null = null;
  let assertionRefusal: FederationRefusal | null = null;
  const redemptions: Redemption[] = [];
  let failures = { count: 0, status: 503 };
  let hanging = false;
  const hung = new Set<ServerResponse>();
  let authorityHost = '';

  const newRefreshToken = (client: ClientType, amr: string[]) => {
    const token = `rt-${randomUUID()}`;
    refreshTokens.set(token, { valid: true, client, amr });
    return token;
  };

  const sendJson = (res: ServerResponse, status: number, body: unknown) => {
    res
      .writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store, no-cache',
        pragma: 'no-cache',
      })
      .end(JSON.stringify(body));
  };

  /** `{ error, error_description, error_codes?, timestamp, trace_id, correlation_id }`, as Entra sends it. */
  const sendError = (req: IncomingMessage, res: ServerResponse, e: EntraError) => {
    const now = new Date();
    const traceId = randomUUID();
    const header = req.headers['client-request-id'];
    const correlationId = typeof header === 'string' && header !== '' ? header : randomUUID();
    const description = `${e.code === undefined ? '' : `AADSTS${e.code}: `}${e.description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${entraTimestamp(now)}`;
    sendJson(res, e.status, {
      error: e.error,
      error_description: description,
      ...(e.code === undefined ? {} : { error_codes: [e.code] }),
      timestamp: entraTimestamp(now),
      trace_id: traceId,
      correlation_id: correlationId,
      ...(e.code === undefined ? {} : { error_uri: `${authorityHost}/error?code=${e.code}` }),
    });
  };

  /** Tenant and app registration checks shared by both endpoints; undefined when they pass. */
  const checkClient = (tenant: string, form: URLSearchParams): EntraError | undefined => {
    if (tenant.toLowerCase() !== tenantId) {
      return {
        status: 400,
        error: 'invalid_request',
        code: 90002,
        description: `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
      };
    }
    const clientId = form.get('client_id');
    if (!clientId) {
      return {
        status: 400,
        error: 'invalid_request',
        code: 900144,
        description: "The request body must contain the following parameter: 'client_id'.",
      };
    }
    if (clientId !== options.clientId) {
      return {
        status: 400,
        error: 'unauthorized_client',
        code: 700016,
        description: `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      };
    }
    return undefined;
  };

  /** Client authentication on the token endpoint; undefined when it passes. */
  const checkClientAuth = (form: URLSearchParams): EntraError | undefined => {
    const assertion = form.get('client_assertion') || undefined;
    const secret = form.get('client_secret') || undefined;
    if (assertion !== undefined) {
      if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
        return {
          status: 400,
          error: 'invalid_request',
          code: 900144,
          description: `The request body must contain the following parameter: 'client_assertion_type' with the value '${ASSERTION_TYPE}'.`,
        };
      }
      if (!options.acceptAssertion?.(assertion)) {
        return {
          status: 401,
          error: 'invalid_client',
          code: 700027,
          description: 'Client assertion failed signature validation.',
        };
      }
      return undefined;
    }
    if (secret !== undefined) {
      if (options.clientSecret === undefined || secret !== options.clientSecret) {
        return {
          status: 401,
          error: 'invalid_client',
          code: 7000215,
          description: `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${options.clientId}'.`,
        };
      }
      return undefined;
    }
    if (options.allowPublicClient) return undefined;
    return {
      status: 401,
      error: 'invalid_client',
      code: 7000218,
      description: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    };
  };

  /** Entra's answer for `reason`: the AADSTS code and the wording of its description. */
  const grantRefused = (reason: GrantRefusal): EntraError => {
    const issued = entraTimestamp(new Date(Date.now() - 90 * 86_400_000));
    const descriptions: Record<GrantRefusal, [number, string]> = {
      revoked: [
        50173,
        `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${entraTimestamp(new Date())}'.`,
      ],
      inactive: [
        700082,
        `The refresh token has expired due to inactivity. The token was issued on ${issued} and was inactive for 90.00:00:00.`,
      ],
      'sign-in-frequency': [
        70043,
        `The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on ${issued} and the maximum allowed lifetime for this request is 86400.`,
      ],
      'conditional-access': [
        53003,
        'Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.',
      ],
      'consent-missing': [
        65001,
        `The user or administrator has not consented to use the application with ID '${options.clientId}' named 'Partner Center referral webhook'. Send an interactive authorization request for this user and resource.`,
      ],
      'user-disabled': [50057, 'The user account is disabled.'],
      'mfa-required': [
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access 'fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd'.",
      ],
    };
    const [code, description] = descriptions[reason];
    return { status: 400, error: 'invalid_grant', code, description };
  };

  /** AADSTS70021 and its issuer/audience/subject variants, answered as `400 invalid_request`. */
  const federationRefused = (code: FederationRefusal): EntraError => {
    const issuer = `https://login.microsoftonline.com/${tenantId}/v2.0`;
    const which = { 700211: 'issuer', 700212: 'audience', 700213: 'subject' } as const;
    const description =
      code === 70021
        ? `No matching federated identity record found for presented assertion. Assertion Issuer: '${issuer}'. Assertion Subject: '00000000-0000-0000-0000-000000000000'. Assertion Audience: 'api://AzureADTokenExchange'.`
        : `No matching federated identity record found for presented assertion ${which[code]}. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.`;
    return { status: 400, error: 'invalid_request', code, description };
  };

  const checkPartnerScope = (scope: string): EntraError | undefined => {
    if (scopesOf(scope).some((s) => PARTNER_SCOPES.includes(s))) return undefined;
    return {
      status: 400,
      error: 'invalid_scope',
      code: 70011,
      description: `The provided request must include a 'scope' input parameter with '${PARTNER_SCOPES[0]}'. The provided value for the input parameter 'scope' is not valid.`,
    };
  };

  /**
   * 200 with an access token, and a refresh token of `refresh.client` when `refresh` is given. Both carry the
   * sign-in's `amr` (a refresh keeps the methods of the original sign-in).
   */
  const sendTokens = (
    res: ServerResponse,
    scope: string,
    amr: string[],
    refresh: { client: ClientType } | undefined,
  ) => {
    const accessToken = `pc-app-user-${randomUUID()}`;
    accessTokens.set(accessToken, { expiresAt: Date.now() + lifetimeSeconds * 1000, amr });
    sendJson(res, 200, {
      token_type: 'Bearer',
      scope,
      expires_in: lifetimeSeconds,
      ext_expires_in: lifetimeSeconds,
      access_token: accessToken,
      ...(refresh ? { refresh_token: newRefreshToken(refresh.client, amr) } : {}),
    });
  };

  /** `http://localhost` redirect URIs match whatever the port (Entra ignores it for loopback); others exactly. */
  const registered = (redirectUri: string): boolean => {
    let url: URL;
    try {
      url = new URL(redirectUri);
    } catch {
      return false;
    }
    const withoutPort = (u: URL) => `${u.protocol}//${u.hostname}${u.pathname === '/' ? '' : u.pathname}`;
    return (options.redirectUris ?? []).some((r) => {
      if (r === redirectUri) return true;
      const candidate = new URL(r);
      return (
        url.hostname === 'localhost' &&
        candidate.hostname === 'localhost' &&
        withoutPort(url) === withoutPort(candidate)
      );
    });
  };

  const handleToken = (req: IncomingMessage, res: ServerResponse, tenant: string, form: URLSearchParams) => {
    const grantType = form.get('grant_type') ?? '';
    const refreshToken = form.get('refresh_token') ?? undefined;
    const code = form.get('code') ?? undefined;
    const redemption: Redemption = {
      grantType,
      ...(refreshToken === undefined ? {} : { refreshToken }),
      ...(code === undefined ? {} : { code }),
      clientAuth: form.get('client_assertion') ? 'assertion' : form.get('client_secret') ? 'secret' : 'none',
      scope: form.get('scope') ?? '',
      status: 0,
    };
    redemptions.push(redemption);
    if (hanging) {
      hung.add(res);
      return;
    }
    const fail = (e: EntraError) => {
      redemption.status = e.status;
      sendError(req, res, e);
    };

    if (failures.count > 0) {
      failures.count--;
      return fail({
        status: failures.status,
        error: 'temporarily_unavailable',
        code: 90033,
        description: 'A transient error has occurred. Please try again.',
      });
    }
    const refused = checkClient(tenant, form) ?? checkClientAuth(form);
    if (refused) return fail(refused);
    const client: ClientType = redemption.clientAuth === 'none' ? 'public' : 'confidential';
    if (assertionRefusal !== null && redemption.clientAuth === 'assertion')
      return fail(federationRefused(assertionRefusal));

    if (grantType === 'refresh_token') {
      const scopeRefused = checkPartnerScope(redemption.scope);
      if (scopeRefused) return fail(scopeRefused);
      if (refreshToken === undefined || refreshToken === '') {
        return fail({
          status: 400,
          error: 'invalid_request',
          code: 900144,
          description: "The request body must contain the following parameter: 'refresh_token'.",
        });
      }
      const state = refreshTokens.get(refreshToken);
      const refusal = refusedTokens.get(refreshToken) ?? (state ? grantRefusal : null);
      if (refusal) return fail(grantRefused(refusal));
      if (state?.valid !== true) {
        // Revoked: 50173 FreshTokenNeeded; never issued here: 70000 InvalidGrant.
        if (state) return fail(grantRefused('revoked'));
        return fail({
          status: 400,
          error: 'invalid_grant',
          code: 70000,
          description: 'The refresh token is not valid.',
        });
      }
      if (state.client === 'public' && client === 'confidential') {
        return fail({
          status: 401,
          error: 'invalid_client',
          code: 700025,
          description: "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        });
      }
      if (state.client === 'confidential' && client === 'public') {
        return fail({
          status: 401,
          error: 'invalid_client',
          code: 7000218,
          description: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        });
      }
      redemption.status = 200;
      return sendTokens(res, redemption.scope, state.amr, { client: state.client });
    }

    if (grantType === 'authorization_code') {
      const issued = code === undefined ? undefined : codes.get(code);
      if (code !== undefined) codes.delete(code);
      if (!issued || issued.expiresAt <= Date.now()) {
        return fail({
          status: 400,
          error: 'invalid_grant',
          code: 70008,
          description:
            'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
        });
      }
      if (issued.clientId !== form.get('client_id')) {
        return fail({
          status: 400,
          error: 'invalid_grant',
          code: 70000,
          description: 'The provided authorization code was issued to a different client.',
        });
      }
      const redirectUri = form.get('redirect_uri') ?? '';
      if (redirectUri !== issued.redirectUri) {
        return fail({
          status: 400,
          error: 'invalid_grant',
          code: 500112,
          description: `The reply address '${redirectUri}' does not match the reply address '${issued.redirectUri}' provided when requesting Authorization code.`,
        });
      }
      const verifier = form.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== issued.codeChallenge) {
        return fail({
          status: 400,
          error: 'invalid_grant',
          code: 50148,
          description:
            'The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.',
        });
      }
      redemption.status = 200;
      const offline = scopesOf(issued.scope).includes('offline_access');
      return sendTokens(res, issued.scope, issued.amr, offline ? { client } : undefined);
    }

    if (grantType === DEVICE_CODE_GRANT) {
      const deviceCode = form.get('device_code') ?? '';
      const device = devices.get(deviceCode);
      if (!device || device.expiresAt <= Date.now()) {
        devices.delete(deviceCode);
        return fail({ status: 400, error: 'expired_token', code: 70019, description: 'Verification code expired.' });
      }
      if (!device.approved) {
        return fail({
          status: 400,
          error: 'authorization_pending',
          code: 70016,
          description: 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.',
        });
      }
      devices.delete(deviceCode);
      redemption.status = 200;
      const offline = scopesOf(device.scope).includes('offline_access');
      return sendTokens(res, device.scope, signInAmr, offline ? { client } : undefined);
    }

    return fail({
      status: 400,
      error: 'unsupported_grant_type',
      code: 70003,
      description: 'The app requested an unsupported grant type.',
    });
  };

  const handleDeviceCode = (req: IncomingMessage, res: ServerResponse, tenant: string, form: URLSearchParams) => {
    const refused = checkClient(tenant, form) ?? checkPartnerScope(form.get('scope') ?? '');
    if (refused) return sendError(req, res, refused);
    const deviceCode = randomBytes(48).toString('base64url');
    let userCode = newUserCode();
    while ([...devices.values()].some((d) => d.userCode === userCode)) userCode = newUserCode();
    devices.set(deviceCode, {
      userCode,
      scope: form.get('scope') ?? '',
      expiresAt: Date.now() + DEVICE_CODE_LIFETIME_SECONDS * 1000,
      approved: false,
    });
    const verificationUri = `${authorityHost}/devicelogin`;
    return sendJson(res, 200, {
      device_code: deviceCode,
      user_code: userCode,
      verification_uri: verificationUri,
      expires_in: DEVICE_CODE_LIFETIME_SECONDS,
      interval: 1,
      message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`,
    });
  };

  /** An error page, as Entra shows one in the browser for a request it cannot redirect back (bad client or redirect URI). */
  const errorPage = (res: ServerResponse, code: number, text: string) => {
    res
      .writeHead(400, { 'content-type': 'text/plain; charset=utf-8' })
      .end(`Sign in: Sorry, but we're having trouble signing you in.\nAADSTS${code}: ${text}\n`);
  };

  /** GET /{tenant}/oauth2/v2.0/authorize: the configured user signs in (no page) and the browser is redirected. */
  const handleAuthorize = (res: ServerResponse, tenant: string, query: URLSearchParams) => {
    const clientRefused = checkClient(tenant, query);
    if (clientRefused) return errorPage(res, clientRefused.code ?? 0, clientRefused.description);
    const redirectUri = query.get('redirect_uri') ?? '';
    if (!registered(redirectUri)) {
      return errorPage(
        res,
        50011,
        `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${options.clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.`,
      );
    }
    const back = new URL(redirectUri);
    const state = query.get('state');
    if (state !== null) back.searchParams.set('state', state);
    const redirectWith = (params: Record<string, string>) => {
      for (const [name, value] of Object.entries(params)) back.searchParams.set(name, value);
      res.writeHead(302, { location: back.href }).end();
    };
    if (query.get('response_type') !== 'code') {
      return redirectWith({
        error: 'unsupported_response_type',
        error_description: 'AADSTS70005: response_type is not supported for this request.',
      });
    }
    const scope = query.get('scope') ?? '';
    if (checkPartnerScope(scope)) {
      return redirectWith({
        error: 'invalid_scope',
        error_description: 'AADSTS70011: The provided value for scope is not valid.',
      });
    }
    const challenge = query.get('code_challenge') ?? '';
    if (challenge === '' || query.get('code_challenge_method') !== 'S256') {
      // Entra accepts `plain` and no PKCE for a web app; this emulator insists on S256, what the bootstrap sends.
      return redirectWith({
        error: 'invalid_request',
        error_description: 'AADSTS50148: code_challenge with code_challenge_method S256 is required by this emulator.',
      });
    }
    const code = randomBytes(32).toString('base64url');
    codes.set(code, {
      clientId: query.get('client_id') ?? '',
      redirectUri,
      codeChallenge: challenge,
      scope,
      amr: signInAmr,
      expiresAt: Date.now() + AUTHORIZATION_CODE_LIFETIME_MS,
    });
    return redirectWith({ code });
  };

  const server = createServer(testServerTls(), (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const authorize = /^\/([^/]+)\/oauth2\/v2\.0\/authorize$/.exec(url.pathname);
    if (authorize && req.method === 'GET') return handleAuthorize(res, authorize[1] as string, url.searchParams);
    if (url.pathname === '/devicelogin') {
      res
        .writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
        .end('Entra emulator: device sign-in is completed by the test calling approveDevice(userCode).\n');
      return;
    }
    const match = /^\/([^/]+)\/oauth2\/v2\.0\/(token|devicecode)$/.exec(url.pathname);
    const tenant = match?.[1];
    const endpoint = match?.[2];
    if (tenant === undefined || endpoint === undefined) {
      return sendError(req, res, { status: 404, error: 'not_found', description: 'No such endpoint.' });
    }
    if (req.method !== 'POST') {
      return sendError(req, res, {
        status: 400,
        error: 'invalid_request',
        code: 900561,
        description: `The endpoint only accepts POST requests. Received a ${req.method ?? ''} request.`,
      });
    }
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    readBody(req, MAX_BODY_BYTES)
      .then((b) => b?.toString('utf8'))
      .then(
        (text) => {
          if (text === undefined) {
            return sendError(req, res, {
              status: 413,
              error: 'invalid_request',
              description: 'Request body too large.',
            });
          }
          if (contentType !== 'application/x-www-form-urlencoded') {
            return sendError(req, res, {
              status: 400,
              error: 'invalid_request',
              code: 900144,
              description: "The request body must contain the following parameter: 'grant_type'.",
            });
          }
          const form = new URLSearchParams(text);
          if (endpoint === 'token') return handleToken(req, res, tenant, form);
          return handleDeviceCode(req, res, tenant, form);
        },
        () => res.destroy(),
      );
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  authorityHost = `https://127.0.0.1:${port}`;

  return {
    authorityHost,
    issueRefreshToken: ({ client = 'confidential', mfa = true } = {}) =>
      newRefreshToken(client, mfa ? AMR_MFA : AMR_PASSWORD),
    signInWith({ mfa }) {
      signInAmr = mfa ? AMR_MFA : AMR_PASSWORD;
    },
    accessTokenClaims(token) {
      const issued = accessTokens.get(token);
      return issued ? { amr: [...issued.amr] } : undefined;
    },
    revoke(refreshToken) {
      const state = refreshTokens.get(refreshToken);
      if (state) state.valid = false;
      else refreshTokens.set(refreshToken, { valid: false, client: 'confidential', amr: AMR_MFA });
    },
    revokeAll() {
      for (const state of refreshTokens.values()) state.valid = false;
    },
    refuse(refreshToken, reason) {
      refusedTokens.set(refreshToken, reason);
    },
    refuseGrants(reason) {
      grantRefusal = reason;
    },
    refuseAssertions(code) {
      assertionRefusal = code;
    },
    isAccessToken(token) {
      const issued = accessTokens.get(token);
      return issued !== undefined && issued.expiresAt > Date.now();
    },
    redemptions,
    failNext(count, status = 503) {
      failures = { count, status };
    },
    hang(on) {
      hanging = on;
      if (on) return;
      for (const res of hung) res.socket?.destroy();
      hung.clear();
    },
    approveDevice(userCode) {
      const wanted = userCode.toUpperCase();
      const device = [...devices.values()].find((d) => d.userCode === wanted);
      if (!device) throw new Error(`approveDevice: no pending device authorization with user code ${userCode}`);
      device.approved = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
