/**
 * `npm run auth:bootstrap` as a partner admin runs it (the built CLI in plain Node): device code sign-in,
 * then the refresh token goes straight into Key Vault, and is never printed.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AuthWorld, SECRET_NAME, startAuthWorld } from '../support/auth-stack.js';
import { isolatedEnv, startProcess } from '../support/stack.js';

let world: AuthWorld;
beforeAll(async () => {
  world = await startAuthWorld();
});
afterAll(async () => {
  await world?.close();
});

it('signs the service account in with a device code and stores the refresh token in Key Vault', async () => {
  const { PARTNER_CENTER_AUTH: _mode, PARTNER_CENTER_BASE_URL: _url, KEY_VAULT_URL, ...env } = world.env;
  const cli = startProcess(['dist/tools/auth-bootstrap.js', '--vault-url', KEY_VAULT_URL as string], isolatedEnv(env));
  const [, userCode] = await cli.waitFor(/user code: (\S+)\)/);
  expect(cli.output()).toContain('Sign in as the Partner Center service account');
  world.entra.approveDevice(userCode as string);
  expect(await cli.exited).toBe(0);

  const stored = world.vault.latest(SECRET_NAME);
  expect(stored?.value).toEqual(expect.any(String));
  expect(cli.output()).toContain(
    `Stored the refresh token in Key Vault secret "${SECRET_NAME}" (version ${stored?.version})`,
  );
  for (const secret of world.secrets()) expect(cli.output()).not.toContain(secret);
  const deviceGrant = world.entra.redemptions.find(
    (r) => r.grantType === 'urn:ietf:params:oauth:grant-type:device_code' && r.status === 200,
  );
  expect(deviceGrant).toMatchObject({ clientAuth: 'none', status: 200 });

  // The stored token is one the adapter can redeem.
  const tokens = world.tokenProvider();
  expect(world.entra.isAccessToken(await tokens.getToken())).toBe(true);
});

it('refuses to run without the settings it needs, naming them', async () => {
  const cli = startProcess(
    ['dist/tools/auth-bootstrap.js'],
    isolatedEnv({ IDENTITY_ENDPOINT: world.identity.endpoint }),
  );
  expect(await cli.exited).toBe(2);
  expect(cli.output()).toContain('KEY_VAULT_URL is required');
  expect(cli.output()).toContain('PARTNER_TENANT_ID is required');
  expect(cli.output()).toContain('APP_REGISTRATION_CLIENT_ID is required');
});
