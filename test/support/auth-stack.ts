/**
 * The Secure Application Model world on loopback: managed-identity endpoint, Entra token endpoint,
 * Key Vault over TLS (test CA) and the Partner Center sandbox, each accepting only the tokens the
 * previous one legitimately issued:
 * - Key Vault accepts managed-identity tokens for https://vault.azure.net;
 * - Entra accepts managed-identity tokens for api://AzureADTokenExchange as client assertions, and only from
 *   the user-assigned identity (a system-assigned one cannot be a federated credential);
 * - the app registration has "Allow public client flows" off unless `allowPublicClient`, and a Web redirect URI
 *   `http://localhost` for the bootstrap's loopback;
 * - the sandbox accepts only Entra's App+User access tokens (never an app-only MI token), and only those of an
 *   MFA sign-in (900421 otherwise).
 */
import { type EntraEmulator, startEntraEmulator } from '../../dev/emulators/entra.js';
import { type IdentityEmulator, startIdentityEmulator } from '../../dev/emulators/identity.js';
import { type KeyVaultEmulator, startKeyVaultEmulator } from '../../dev/emulators/key-vault.js';
import { type PartnerCenterSandbox, startPartnerCenterSandbox } from '../../dev/sandbox/server.js';
import { type AppUserAuth, type AppUserTokenOptions, createAppUserTokenProvider } from '../../shared/auth/app-user.js';
import { createKeyVaultSecretStore, type SecretStore } from '../../shared/auth/key-vault.js';
import { managedIdentityCredential } from '../../shared/auth/managed-identity.js';
import type { TokenProvider } from '../../shared/auth/token-provider.js';
import { PARTNER_CENTER_SCOPE } from '../../shared/config.js';

export const TENANT_ID = '7d23e5ca-19dc-4eaa-aac8-5e6b559f0d1d';
export const APP_CLIENT_ID = '0b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b';
export const SECRET_NAME = 'partner-center-refresh-token';
/** The user-assigned managed identity (`AZURE_CLIENT_ID`) the app registration trusts. */
export const USER_ASSIGNED_CLIENT_ID = '5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f';
/** The Web redirect URI registered on the app registration (Entra ignores the port of a localhost URI). */
export const REGISTERED_REDIRECT_URI = 'http://localhost';

export interface AuthWorld {
  identity: IdentityEmulator;
  entra: EntraEmulator;
  vault: KeyVaultEmulator;
  sandbox: PartnerCenterSandbox;
  /** App settings for app-user mode against this world. */
  env: Record<string, string>;
  /** Every secret value this world ever held or issued, to scan logs and answers for. */
  secrets(): string[];
  /** app-user settings against this world, as the app's configuration would produce them. */
  auth: AppUserAuth;
  /** The real Key Vault secret store, through this process's managed identity (points IDENTITY_* here). */
  secretStore(): SecretStore;
  /** An app-user token provider in this process; `options` override the defaults. */
  tokenProvider(options?: Partial<AppUserTokenOptions>): TokenProvider;
  close(): Promise<void>;
}

export async function startAuthWorld(
  options: { accessTokenLifetimeSeconds?: number; allowPublicClient?: boolean } = {},
): Promise<AuthWorld> {
  const identity = await startIdentityEmulator();
  const issuedFor = (resource: string) => (token: string) =>
    identity.issued.some((t) => t.token === token && t.resource === resource);
  const federated = (token: string) =>
    identity.issued.some(
      (t) => t.token === token && t.resource === 'api://AzureADTokenExchange' && t.clientId === USER_ASSIGNED_CLIENT_ID,
    );
  const entra = await startEntraEmulator({
    tenantId: TENANT_ID,
    clientId: APP_CLIENT_ID,
    acceptAssertion: federated,
    allowPublicClient: options.allowPublicClient ?? false,
    redirectUris: [REGISTERED_REDIRECT_URI],
    ...(options.accessTokenLifetimeSeconds ? { accessTokenLifetimeSeconds: options.accessTokenLifetimeSeconds } : {}),
  });
  const vault = await startKeyVaultEmulator({ acceptToken: issuedFor('https://vault.azure.net'), tenantId: TENANT_ID });
  const sandbox = await startPartnerCenterSandbox({
    acceptToken: (token) => entra.isAccessToken(token),
    tokenHasMfa: (token) => entra.accessTokenClaims(token)?.amr.includes('mfa') ?? false,
  });
  const auth: AppUserAuth = {
    mode: 'app-user',
    keyVaultUrl: vault.vaultUrl,
    keyVaultLoopback: true,
    refreshTokenSecretName: SECRET_NAME,
    authorityHost: entra.authorityHost,
    tenantId: TENANT_ID,
    appClientId: APP_CLIENT_ID,
    clientAuth: 'federated',
    clientSecretName: undefined,
    // Every rotation written back, so that rotation tests see each one; the interval has tests of its own.
    writeBackIntervalMs: 0,
  };
  const secretStore = () => {
    process.env.IDENTITY_ENDPOINT = identity.endpoint;
    process.env.IDENTITY_HEADER = identity.header;
    return createKeyVaultSecretStore({
      vaultUrl: vault.vaultUrl,
      credential: () => managedIdentityCredential(undefined),
      loopback: true,
    });
  };
  const seenAuthorization = () => sandbox.requests.map((r) => (r.headers.authorization ?? '').replace(/^Bearer /, ''));
  return {
    identity,
    entra,
    vault,
    sandbox,
    env: {
      PARTNER_CENTER_AUTH: 'app-user',
      PARTNER_CENTER_BASE_URL: sandbox.url,
      IDENTITY_ENDPOINT: identity.endpoint,
      IDENTITY_HEADER: identity.header,
      KEY_VAULT_URL: vault.vaultUrl,
      PARTNER_TENANT_ID: TENANT_ID,
      APP_REGISTRATION_CLIENT_ID: APP_CLIENT_ID,
      AZURE_AUTHORITY_HOST: entra.authorityHost,
      AZURE_CLIENT_ID: USER_ASSIGNED_CLIENT_ID,
    },
    secrets: () =>
      [
        identity.header,
        ...identity.issued.map((t) => t.token),
        ...vault.versions(SECRET_NAME).map((v) => v.value),
        ...entra.redemptions.flatMap((r) => (r.refreshToken ? [r.refreshToken] : [])),
        ...seenAuthorization(),
      ].filter((s) => s.length > 8),
    auth,
    secretStore,
    tokenProvider: (options = {}) =>
      createAppUserTokenProvider({
        auth,
        scope: PARTNER_CENTER_SCOPE,
        managedIdentityClientId: USER_ASSIGNED_CLIENT_ID,
        secrets: options.secrets ?? secretStore(),
        ...options,
      }),
    async close() {
      await sandbox.close();
      await vault.close();
      await entra.close();
      await identity.close();
    },
  };
}

/**
 * The admin's browser: opens the authorization URL at the Entra emulator (which signs the configured user in at
 * once) and follows its redirect to the bootstrap's loopback listener. Returns Entra's answer when it does not
 * redirect (an error page), else the listener's.
 */
export async function playBrowser(authorizationUrl: string): Promise<{ status: number; text: string; at: string }> {
  const entra = await fetch(authorizationUrl, { redirect: 'manual' });
  const location = entra.headers.get('location');
  if (entra.status !== 302 || !location) return { status: entra.status, text: await entra.text(), at: 'entra' };
  const loopback = await fetch(location);
  return { status: loopback.status, text: await loopback.text(), at: location };
}
