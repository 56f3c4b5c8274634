/**
 * The emulators are as strict as Entra and Partner Center on the points the bootstrap depends on
 * (docs/authentication.md#what-each-failure-means): each refusal, with the error code a partner admin will read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationUrl, EntraError, redeemAuthorizationCode, redeemRefreshToken } from '../../shared/auth/entra.js';
import { PARTNER_CENTER_SCOPE } from '../../shared/config.js';
import {
  APP_CLIENT_ID,
  type AuthWorld,
  startAuthWorld,
  TENANT_ID,
  USER_ASSIGNED_CLIENT_ID,
} from '../support/auth-stack.js';

let world: AuthWorld;
let endpoint: { authorityHost: string; tenantId: string; clientId: string };
const scope = `${PARTNER_CENTER_SCOPE} offline_access`;

beforeAll(async () => {
  world = await startAuthWorld({ allowPublicClient: true });
  endpoint = { authorityHost: world.entra.authorityHost, tenantId: TENANT_ID, clientId: APP_CLIENT_ID };
});
afterAll(async () => {
  await world?.close();
});

/** A managed-identity token for the token exchange audience, from the user-assigned identity or the system one. */
async function assertion(clientId: string | null = USER_ASSIGNED_CLIENT_ID): Promise<string> {
  const url = new URL(world.identity.endpoint);
  url.search = new URLSearchParams({
    'api-version': '2019-08-01',
    resource: 'api://AzureADTokenExchange',
    ...(clientId ? { client_id: clientId } : {}),
  }).toString();
  const answer = await fetch(url, { headers: { 'x-identity-header': world.identity.header } });
  return ((await answer.json()) as { access_token: string }).access_token;
}

async function refused(promise: Promise<unknown>): Promise<EntraError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EntraError);
  return error as EntraError;
}

/** Plays the browser up to Entra's redirect; returns the code (or the error page / error redirect). */
async function authorize(params: { redirectUri?: string; challenge?: string; method?: string } = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(
    authorizationUrl(endpoint, {
      redirectUri: params.redirectUri ?? 'http://localhost:43123',
      scope,
      state: 'state-of-this-sign-in',
      codeChallenge: params.challenge ?? createHash('sha256').update(verifier).digest('base64url'),
    }),
  );
  if (params.method) url.searchParams.set('code_challenge_method', params.method);
  const answer = await fetch(url, { redirect: 'manual' });
  const location = answer.headers.get('location');
  return {
    verifier,
    status: answer.status,
    page: location ? '' : await answer.text(),
    redirect: location ? new URL(location) : undefined,
    code: location ? (new URL(location).searchParams.get('code') ?? undefined) : undefined,
  };
}

describe('refresh tokens keep the client type they were issued to', () => {
  it('a public-client (device code) token redeemed with a client assertion: AADSTS700025', async () => {
    const token = world.entra.issueRefreshToken({ client: 'public' });
    const error = await refused(
      redeemRefreshToken(endpoint, { refreshToken: token, scope, auth: { assertion: await assertion() } }),
    );
    expect(error).toMatchObject({ status: 401, error: 'invalid_client', errorCodes: [700025] });
    // The same token, as the public client it belongs to, is fine.
    await expect(
      redeemRefreshToken(endpoint, { refreshToken: token, scope, auth: { none: true } }),
    ).resolves.toBeTruthy();
  });

  it('a confidential token redeemed without a credential: AADSTS7000218', async () => {
    const token = world.entra.issueRefreshToken();
    const error = await refused(redeemRefreshToken(endpoint, { refreshToken: token, scope, auth: { none: true } }));
    expect(error).toMatchObject({ status: 401, error: 'invalid_client', errorCodes: [7000218] });
  });

  it('a system-assigned identity cannot be the federated credential: its assertion is refused (AADSTS700027)', async () => {
    const token = world.entra.issueRefreshToken();
    const error = await refused(
      redeemRefreshToken(endpoint, { refreshToken: token, scope, auth: { assertion: await assertion(null) } }),
    );
    expect(error).toMatchObject({ error: 'invalid_client', errorCodes: [700027] });
  });
});

describe('the authorization code flow', () => {
  it('redirects to the registered Web redirect URI, whatever the localhost port, with the code and the state', async () => {
    const signIn = await authorize({ redirectUri: 'http://localhost:50999' });
    expect(signIn.status).toBe(302);
    expect(signIn.redirect?.origin).toBe('http://localhost:50999');
    expect(signIn.redirect?.searchParams.get('state')).toBe('state-of-this-sign-in');
    expect(signIn.code).toEqual(expect.any(String));
  });

  it('an unregistered redirect URI gets an error page, never a redirect (AADSTS50011)', async () => {
    const signIn = await authorize({ redirectUri: 'http://127.0.0.1:50999' });
    expect(signIn.status).toBe(400);
    expect(signIn.redirect).toBeUndefined();
    expect(signIn.page).toContain('AADSTS50011');
  });

  it('without a S256 PKCE challenge the browser comes back with an error', async () => {
    const signIn = await authorize({ method: 'plain' });
    expect(signIn.redirect?.searchParams.get('error')).toBe('invalid_request');
    expect(signIn.code).toBeUndefined();
  });

  it('the code is redeemed only with the verifier of its challenge (AADSTS50148), the same redirect URI (AADSTS500112), once (AADSTS70008)', async () => {
    const auth = { assertion: await assertion() };
    const redirectUri = 'http://localhost:43123';
    const wrongVerifier = await authorize();
    expect(
      await refused(
        redeemAuthorizationCode(endpoint, {
          code: wrongVerifier.code as string,
          codeVerifier: randomBytes(32).toString('base64url'),
          redirectUri,
          scope,
          auth,
        }),
      ),
    ).toMatchObject({ error: 'invalid_grant', errorCodes: [50148] });

    const wrongRedirect = await authorize();
    expect(
      await refused(
        redeemAuthorizationCode(endpoint, {
          code: wrongRedirect.code as string,
          codeVerifier: wrongRedirect.verifier,
          redirectUri: 'http://localhost:1',
          scope,
          auth,
        }),
      ),
    ).toMatchObject({ error: 'invalid_grant', errorCodes: [500112] });

    const good = await authorize();
    const request = { code: good.code as string, codeVerifier: good.verifier, redirectUri, scope, auth };
    const tokens = await redeemAuthorizationCode(endpoint, request);
    expect(tokens.refreshToken).toEqual(expect.any(String));
    expect(await refused(redeemAuthorizationCode(endpoint, request))).toMatchObject({ errorCodes: [70008] });

    // Issued to the confidential client: redeemable with the assertion, and not without it.
    const refresh = tokens.refreshToken as string;
    await expect(redeemRefreshToken(endpoint, { refreshToken: refresh, scope, auth })).resolves.toBeTruthy();
    expect(
      await refused(redeemRefreshToken(endpoint, { refreshToken: refresh, scope, auth: { none: true } })),
    ).toMatchObject({ errorCodes: [7000218] });
  });

  it('another app registration cannot redeem the code (AADSTS700016)', async () => {
    const signIn = await authorize();
    const error = await refused(
      redeemAuthorizationCode(
        { ...endpoint, clientId: '99999999-0000-4000-8000-000000000000' },
        {
          code: signIn.code as string,
          codeVerifier: signIn.verifier,
          redirectUri: 'http://localhost:43123',
          scope,
          auth: { assertion: await assertion() },
        },
      ),
    );
    expect(error).toMatchObject({ error: 'unauthorized_client', errorCodes: [700016] });
  });
});

describe('the sandbox checks the MFA claim', () => {
  it('an App+User token from a sign-in without MFA: 401 with error code 900421 in the Partner API error shape', async () => {
    const token = world.entra.issueRefreshToken({ mfa: false });
    const { accessToken } = await redeemRefreshToken(endpoint, {
      refreshToken: token,
      scope,
      auth: { assertion: await assertion() },
    });
    expect(world.entra.accessTokenClaims(accessToken)).toEqual({ amr: ['pwd'] });
    const answer = await fetch(`${world.sandbox.url}/v1.0/engagements/referrals?$top=1`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    expect(answer.status).toBe(401);
    expect(await answer.json()).toEqual({
      error: {
        code: '900421',
        message: expect.stringContaining('Multi-factor authentication is required'),
        target: 'referral',
      },
    });
  });
});
