/**
 * The app-user token provider in this process, against the loopback Entra, Key Vault (TLS) and
 * managed-identity emulators with the real SDKs: the rotation corner cases that are hard to reach
 * through HTTP events.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
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
