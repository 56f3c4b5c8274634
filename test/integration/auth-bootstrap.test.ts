/**
 * `npm run auth:bootstrap` as a partner admin runs it (the built CLI in plain Node): device code sign-in,
 * then the refresh token goes straight into Key Vault, and is never printed.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAppUserTokenProvider } from '../../shared/app-user-token-provider.js';
import { PARTNER_CENTER_SCOPE } from '../../shared/config.js';
import { createKeyVaultSecretStore } from '../../shared/key-vault.js';
import { managedIdentityCredential } from '../../shared/managed-identity.js';
import { APP_CLIENT_ID, type AuthWorld, SECRET_NAME, startAuthWorld, TENANT_ID } from '../support/auth-stack.js';
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
  process.env.IDENTITY_ENDPOINT = world.identity.endpoint;
  process.env.IDENTITY_HEADER = world.identity.header;
  const tokens = createAppUserTokenProvider({
    auth: {
      mode: 'app-user',
      keyVaultUrl: world.vault.vaultUrl,
      keyVaultLoopback: true,
      refreshTokenSecretName: SECRET_NAME,
      authorityHost: world.entra.authorityHost,
      tenantId: TENANT_ID,
      appClientId: APP_CLIENT_ID,
      clientAuth: 'federated',
      clientSecretName: undefined,
    },
    scope: PARTNER_CENTER_SCOPE,
    managedIdentityClientId: undefined,
    secrets: createKeyVaultSecretStore({
      vaultUrl: world.vault.vaultUrl,
      credential: () => managedIdentityCredential(undefined),
      loopback: true,
    }),
  });
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
