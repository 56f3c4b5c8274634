/**
 * `npm run auth:bootstrap`: the one-time sign-in of the Secure Application Model.
 *
 * A partner admin runs it from a terminal. The Partner Center service account (Referrals Admin) signs
 * in with MFA through the device code flow; the refresh token Entra returns is stored in Key Vault as a
 * new version of the secret the adapter reads. The token is never printed or written anywhere else.
 *
 * Settings come from the environment (or local.settings.json `Values`), like the app's, and can be
 * overridden with flags: --vault-url, --tenant, --client-id, --secret-name, --authority-host.
 * Key Vault is written with the admin's own Azure sign-in (`az login` / `azd auth login`), or with the
 * managed identity when IDENTITY_ENDPOINT is set.
 */
import { parseArgs } from 'node:util';
import type { TokenCredential } from '@azure/identity';
import { REFRESH_TOKEN_CONTENT_TYPE } from '../shared/auth/app-user.js';
import { EntraError, pollDeviceCode, requestDeviceCode } from '../shared/auth/entra.js';
import { createKeyVaultSecretStore } from '../shared/auth/key-vault.js';
import { parseConfig } from '../shared/config.js';
import { AdapterError } from '../shared/core/errors.js';
import { readLocalSettings } from './local-settings.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

function settings(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...readLocalSettings(process.cwd()), ...process.env };
  const { values } = parseArgs({
    options: {
      'vault-url': { type: 'string' },
      tenant: { type: 'string' },
      'client-id': { type: 'string' },
      'secret-name': { type: 'string' },
      'authority-host': { type: 'string' },
    },
  });
  const flags: Record<string, string | undefined> = {
    KEY_VAULT_URL: values['vault-url'],
    PARTNER_TENANT_ID: values.tenant,
    APP_REGISTRATION_CLIENT_ID: values['client-id'],
    REFRESH_TOKEN_SECRET_NAME: values['secret-name'],
    AZURE_AUTHORITY_HOST: values['authority-host'],
  };
  for (const [name, value] of Object.entries(flags)) if (value !== undefined) env[name] = value;
  return { ...env, PARTNER_CENTER_AUTH: 'app-user' };
}

async function adminCredential(): Promise<TokenCredential> {
  const identity = await import('@azure/identity');
  if (process.env.IDENTITY_ENDPOINT) return new identity.ManagedIdentityCredential();
  return new identity.ChainedTokenCredential(
    new identity.AzureCliCredential(),
    new identity.AzureDeveloperCliCredential(),
  );
}

async function main(): Promise<number> {
  const config = parseConfig(settings());
  if (!config.ok) {
    say('Cannot bootstrap: the settings are incomplete.');
    for (const problem of config.problems) say(`  - ${problem}`);
    return 2;
  }
  const { auth, partnerCenter } = config.config;
  if (auth.mode !== 'app-user') return 2;
  const endpoint = { authorityHost: auth.authorityHost, tenantId: auth.tenantId, clientId: auth.appClientId };
  say('Partner Center sign-in for the adapter (Secure Application Model)');
  say(`  tenant ${auth.tenantId}, app registration ${auth.appClientId}`);
  say(`  refresh token goes to ${auth.keyVaultUrl}, secret "${auth.refreshTokenSecretName}"`);
  say();

  const code = await requestDeviceCode(endpoint, `${partnerCenter.scope} offline_access`);
  say('1. Sign in as the Partner Center service account (Referrals Admin), with MFA:');
  say(`   ${code.message || `open ${code.verificationUri} and enter the code ${code.userCode}`}`);
  say(`   (user code: ${code.userCode})`);
  const tokens = await pollDeviceCode(endpoint, code);
  if (!tokens.refreshToken) {
    say('Entra returned no refresh token: check that the app registration may request offline_access.');
    return 1;
  }
  say('2. Signed in.');

  const store = createKeyVaultSecretStore({
    vaultUrl: auth.keyVaultUrl,
    credential: adminCredential,
    loopback: auth.keyVaultLoopback,
  });
  const stored = await store.set(auth.refreshTokenSecretName, tokens.refreshToken, REFRESH_TOKEN_CONTENT_TYPE);
  say(`3. Stored the refresh token in Key Vault secret "${auth.refreshTokenSecretName}" (version ${stored.version}).`);
  say('   It was not printed or saved anywhere else. The adapter redeems and rotates it from now on;');
  say('   run this again if /api/health reports the refresh token invalid or close to its 90-day limit.');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const detail =
      error instanceof AdapterError || error instanceof EntraError
        ? error.message
        : error instanceof Error
          ? error.name
          : 'unknown error';
    say(`Bootstrap failed: ${detail}`);
    process.exit(1);
  },
);
