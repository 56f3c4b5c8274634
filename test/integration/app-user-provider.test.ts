/**
 * The app-user token provider in this process, against the loopback Entra, Key Vault (TLS) and
 * managed-identity emulators with the real SDKs: the rotation corner cases that are hard to reach
 * through HTTP events.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TokenLogger } from '../../shared/auth/app-user.js';
import type { SecretStore } from '../../shared/auth/key-vault.js';
import { type AuthWorld, SECRET_NAME, startAuthWorld } from '../support/auth-stack.js';

let world: AuthWorld;
let store: SecretStore;
let logs: Array<{ level: string; code: string; detail: string }>;
const log: TokenLogger = (level, record) => logs.push({ level, ...record });

beforeAll(async () => {
  world = await startAuthWorld({ accessTokenLifetimeSeconds: 20 });
  store = world.secretStore();
});
afterAll(async () => {
  await world?.close();
});
beforeEach(() => {
  logs = [];
  world.vault.setReadOnly(false);
});

const provider = (secrets: SecretStore = store, deadTokenRecheckMs?: number) =>
  world.tokenProvider({ secrets, log, ...(deadTokenRecheckMs === undefined ? {} : { deadTokenRecheckMs }) });

it('a lost rotation does not strand the app: invalid_grant is retried once with the newest version', async () => {
  const stale = world.entra.issueRefreshToken();
  world.vault.setSecret(SECRET_NAME, stale);
  // Another instance redeems and rotates between our read and our redemption: the version we read is
  // revoked, the newest one in Key Vault is valid.
  const newer = world.entra.issueRefreshToken();
  let reads = 0;
  const racing: SecretStore = {
    async get(name) {
      reads++;
      const secret = await store.get(name);
      if (reads === 1) {
        world.entra.revoke(stale);
        world.vault.setSecret(SECRET_NAME, newer);
      }
      return secret;
    },
    set: (name, value, contentType) => store.set(name, value, contentType),
  };
  const token = await provider(racing).getToken();
  expect(world.entra.isAccessToken(token)).toBe(true);
  const redeemed = world.entra.redemptions.slice(-2).map((r) => [r.refreshToken, r.status]);
  expect(redeemed).toEqual([
    [stale, 400],
    [newer, 200],
  ]);
  expect(logs).toEqual([]);
});

it('a failed write-back keeps the rotated token in memory, warns, and writes it on the next redemption', async () => {
  const start = world.entra.issueRefreshToken();
  world.vault.setSecret(SECRET_NAME, start);
  world.vault.setReadOnly(true); // the identity has Key Vault Secrets User only
  const tokens = provider();
  expect(world.entra.isAccessToken(await tokens.getToken())).toBe(true);
  expect(logs.map((l) => l.code)).toEqual(['PARTNER_CENTER_REFRESH_TOKEN_WRITEBACK_FAILED']);
  expect(world.vault.latest(SECRET_NAME)?.value).toBe(start);
  const health = await tokens.health();
  expect(health.warnings.join()).toContain('could not be written to Key Vault');

  world.vault.setReadOnly(false);
  await tokens.getToken(); // short-lived tokens: this is a second redemption
  const [first, second] = world.entra.redemptions.slice(-2);
  expect(first?.refreshToken).toBe(start);
  // The second redemption used the rotated token held in memory, not the older one in Key Vault ...
  expect(second?.refreshToken).not.toBe(start);
  expect(second?.status).toBe(200);
  // ... and its own rotation is now in Key Vault.
  expect(world.vault.latest(SECRET_NAME)?.value).not.toBe(start);
  expect((await tokens.health()).warnings).toEqual([]);
});

it('a dead refresh token fails fast until Key Vault holds a new one, then recovers by itself', async () => {
  world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken());
  world.entra.revokeAll();
  const tokens = provider(store, 200);
  const before = world.entra.redemptions.length;
  await expect(tokens.getToken()).rejects.toMatchObject({
    code: 'upstream_auth_failed',
    logCode: 'PARTNER_CENTER_REFRESH_TOKEN_INVALID',
  });
  await expect(tokens.getToken()).rejects.toMatchObject({ code: 'upstream_auth_failed' });
  expect(world.entra.redemptions.length - before).toBe(1);
  expect(logs.filter((l) => l.code === 'PARTNER_CENTER_REFRESH_TOKEN_INVALID')).toHaveLength(1);

  // An admin re-runs the bootstrap.
  world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken());
  await sleep(250);
  expect(world.entra.isAccessToken(await tokens.getToken())).toBe(true);
  expect((await tokens.health()).warnings).toEqual([]);
});

it('a missing refresh token says to run the bootstrap', async () => {
  const tokens = world.tokenProvider({ auth: { ...world.auth, refreshTokenSecretName: 'never-bootstrapped' }, log });
  await expect(tokens.getToken()).rejects.toMatchObject({
    code: 'upstream_auth_failed',
    logCode: 'PARTNER_CENTER_REFRESH_TOKEN_MISSING',
    message: expect.stringContaining('npm run auth:bootstrap'),
  });
});

it('the client-secret fallback reads the secret from Key Vault, never from settings', async () => {
  world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken());
  world.vault.setSecret('app-client-secret', 'wrong-secret');
  const tokens = world.tokenProvider({
    auth: { ...world.auth, clientAuth: 'key-vault-secret', clientSecretName: 'app-client-secret' },
    log,
  });
  // The emulator's app registration has no secret: Entra refuses the client, and says which problem it is.
  await expect(tokens.getToken()).rejects.toMatchObject({
    code: 'upstream_auth_failed',
    logCode: 'APP_CLIENT_AUTH_FAILED',
  });
  expect(world.entra.redemptions.at(-1)).toMatchObject({ clientAuth: 'secret', status: 401 });
});

it.each([
  ['inactive', 700082, 'PARTNER_CENTER_REFRESH_TOKEN_INVALID'],
  ['revoked', 50173, 'PARTNER_CENTER_REFRESH_TOKEN_INVALID'],
  ['sign-in-frequency', 70043, 'PARTNER_CENTER_SIGN_IN_FREQUENCY'],
  ['mfa-required', 50076, 'ENTRA_MFA_REQUIRED'],
] as const)('a dead token (%s, AADSTS%i) fails with %s and is not redeemed again', async (reason, code, logCode) => {
  const planted = world.entra.issueRefreshToken();
  world.vault.setSecret(SECRET_NAME, planted);
  world.entra.refuse(planted, reason);
  const tokens = provider(store, 60_000);
  const before = world.entra.redemptions.length;
  const failure = { code: 'upstream_auth_failed', logCode, message: expect.stringContaining(`AADSTS${code}`) };
  await expect(tokens.getToken()).rejects.toMatchObject(failure);
  await expect(tokens.getToken()).rejects.toMatchObject(failure);
  expect(world.entra.redemptions.length - before).toBe(1);
  expect(logs.map((l) => l.code)).toEqual([logCode]);
  expect((await tokens.health()).lastFailure).toBe(logCode);
});

it.each([
  ['conditional-access', 'PARTNER_CENTER_CONDITIONAL_ACCESS_BLOCKED'],
  ['consent-missing', 'PARTNER_CENTER_CONSENT_MISSING'],
  ['user-disabled', 'PARTNER_CENTER_USER_DISABLED'],
] as const)(
  'a block that can lift (%s) is probed again on a growing backoff, and the same token works once it lifts',
  async (reason, logCode) => {
    world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken());
    world.entra.refuseGrants(reason);
    try {
      const tokens = world.tokenProvider({
        secrets: store,
        log,
        deadTokenRecheckMs: 50,
        retryLaterMs: { baseMs: 300, maxMs: 600 },
      });
      const before = world.entra.redemptions.length;
      await expect(tokens.getToken()).rejects.toMatchObject({ code: 'upstream_auth_failed', logCode });
      // Within the backoff: no Entra call, even after Key Vault is re-read.
      await sleep(100);
      await expect(tokens.getToken()).rejects.toMatchObject({ logCode });
      expect(world.entra.redemptions.length - before).toBe(1);
      // After it: one probe, still refused; the next wait is longer.
      await sleep(300);
      await expect(tokens.getToken()).rejects.toMatchObject({ logCode });
      expect(world.entra.redemptions.length - before).toBe(2);
      await sleep(350);
      await expect(tokens.getToken()).rejects.toMatchObject({ logCode });
      expect(world.entra.redemptions.length - before).toBe(2);
      // The admin lifts the block: the same stored token works, no bootstrap needed.
      world.entra.refuseGrants(null);
      await sleep(300);
      expect(world.entra.isAccessToken(await tokens.getToken())).toBe(true);
      expect(logs.map((l) => l.code)).toEqual([logCode, logCode]);
      expect((await tokens.health()).warnings).toEqual([]);
    } finally {
      world.entra.refuseGrants(null);
    }
  },
);

it('a federated credential that has not propagated yet (AADSTS70021) is retried on a backoff, not latched', async () => {
  world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken());
  world.entra.refuseAssertions(70021);
  try {
    const tokens = world.tokenProvider({
      secrets: store,
      log,
      deadTokenRecheckMs: 50,
      retryLaterMs: { baseMs: 200, maxMs: 200 },
    });
    const before = world.entra.redemptions.length;
    await expect(tokens.getToken()).rejects.toMatchObject({
      code: 'upstream_auth_failed',
      logCode: 'APP_CLIENT_FEDERATION_MISMATCH',
      message: expect.stringContaining('AADSTS70021'),
    });
    await expect(tokens.getToken()).rejects.toMatchObject({ logCode: 'APP_CLIENT_FEDERATION_MISMATCH' });
    expect(world.entra.redemptions.slice(before).map((r) => r.status)).toEqual([400]);
    world.entra.refuseAssertions(null);
    await sleep(250);
    expect(world.entra.isAccessToken(await tokens.getToken())).toBe(true);
  } finally {
    world.entra.refuseAssertions(null);
  }
});

describe('Key Vault write-back interval', () => {
  const HOUR = 3_600_000;
  const withInterval = (writeBackIntervalMs: number) =>
    world.tokenProvider({ auth: { ...world.auth, writeBackIntervalMs }, secrets: store, log });

  it('a young stored token is redeemed again and again without a new version', async () => {
    const planted = world.entra.issueRefreshToken();
    world.vault.setSecret(SECRET_NAME, planted, new Date(Date.now() - HOUR));
    const versions = world.vault.versionCount(SECRET_NAME);
    const before = world.entra.redemptions.length;
    const tokens = withInterval(12 * HOUR);
    for (let i = 0; i < 5; i++) await tokens.renew?.();
    const redeemed = world.entra.redemptions.slice(before);
    expect(redeemed.map((r) => [r.refreshToken, r.status])).toEqual(Array(5).fill([planted, 200]));
    expect(world.vault.versionCount(SECRET_NAME)).toBe(versions);
  });

  it('N redemptions, at most one new version within the interval: an old token is replaced once', async () => {
    const planted = world.entra.issueRefreshToken();
    world.vault.setSecret(SECRET_NAME, planted, new Date(Date.now() - 13 * HOUR));
    const versions = world.vault.versionCount(SECRET_NAME);
    const before = world.entra.redemptions.length;
    const tokens = withInterval(12 * HOUR);
    for (let i = 0; i < 6; i++) await tokens.renew?.();
    expect(world.vault.versionCount(SECRET_NAME)).toBe(versions + 1);
    const written = world.vault.latest(SECRET_NAME)?.value;
    const redeemed = world.entra.redemptions.slice(before).map((r) => r.refreshToken);
    // The first redemption rotated the old token; all later ones redeem the version it wrote.
    expect(redeemed).toEqual([planted, ...Array(5).fill(written)]);
  });

  it('a token near its 90-day end is always written, whatever the interval', async () => {
    world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken(), new Date(Date.now() - 85 * 24 * HOUR));
    const versions = world.vault.versionCount(SECRET_NAME);
    await withInterval(7 * 24 * HOUR).renew?.();
    expect(world.vault.versionCount(SECRET_NAME)).toBe(versions + 1);
    expect(world.vault.latest(SECRET_NAME)?.createdAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
  });
});

it('renew() redeems even with a cached access token, and health shows the last renewal', async () => {
  world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken());
  const tokens = world.tokenProvider({ secrets: store, log, refreshMarginMs: 0 });
  await tokens.getToken();
  const before = world.entra.redemptions.length;
  await tokens.getToken(); // cached
  expect(world.entra.redemptions.length).toBe(before);
  expect(await tokens.health()).toMatchObject({ lastRenewalAt: null, lastRenewalFailure: null });
  await tokens.renew?.();
  expect(world.entra.redemptions.length).toBe(before + 1);
  const health = await tokens.health();
  expect(Date.parse(health.lastRenewalAt ?? '')).toBeGreaterThan(Date.now() - 10_000);

  world.entra.revokeAll();
  await expect(tokens.renew?.()).rejects.toMatchObject({ logCode: 'PARTNER_CENTER_REFRESH_TOKEN_INVALID' });
  expect(await tokens.health()).toMatchObject({
    lastRenewalAt: health.lastRenewalAt,
    lastRenewalFailure: 'PARTNER_CENTER_REFRESH_TOKEN_INVALID',
  });
});

it("the Entra emulator answers refusals in Entra's shape: error, AADSTS-prefixed description, error_codes, trace ids", async () => {
  // A world whose app registration allows public clients: the request carries no client credential.
  const open = await startAuthWorld({ allowPublicClient: true });
  try {
    const planted = open.entra.issueRefreshToken({ client: 'public' });
    open.entra.refuse(planted, 'conditional-access');
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: open.auth.appClientId,
      refresh_token: planted,
      scope: 'https://api.partner.microsoft.com/.default offline_access',
    });
    const token = (id: string) => `${open.entra.authorityHost}/${id}/oauth2/v2.0/token`;
    const answer = await fetch(token(open.auth.tenantId), { method: 'POST', body: form });
    expect(answer.status).toBe(400);
    const body = (await answer.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      error: 'invalid_grant',
      error_codes: [53003],
      error_description: expect.stringMatching(
        /^AADSTS53003: Access has been blocked by Conditional Access policies\./,
      ),
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/),
      trace_id: expect.any(String),
      correlation_id: expect.any(String),
      error_uri: expect.stringContaining('error?code=53003'),
    });
    open.entra.revoke(planted);
    open.entra.refuse(planted, 'inactive');
    const inactive = (await (await fetch(token(open.auth.tenantId), { method: 'POST', body: form })).json()) as {
      error_description: string;
    };
    expect(inactive.error_description).toMatch(/^AADSTS700082: The refresh token has expired due to inactivity\./);
  } finally {
    await open.close();
  }
});
