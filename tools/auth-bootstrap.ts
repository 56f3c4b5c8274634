/**
 * `npm run auth:bootstrap`: the one-time sign-in of the Secure Application Model (docs/authentication.md#the-bootstrap).
 *
 * Default, the browser flow: the Partner Center service account signs in with MFA in the admin's browser
 * (authorization code + PKCE, redirected to a loopback listener here, `http://localhost:<port>`), and the
 * deployed app redeems the code itself, with its managed identity as client credential, stores the refresh
 * token in Key Vault and makes one test call to the Referrals API. This CLI only ever holds the one-time code and
 * the PKCE verifier; no token reaches this machine, and the admin needs no Key Vault role.
 *
 *   npm run auth:bootstrap -- --app-url https://<app>.azurewebsites.net --admin-key <master key> [--login-hint <upn>]
 *
 * `--app-url` and `--admin-key` can come from BOOTSTRAP_APP_URL and BOOTSTRAP_ADMIN_KEY instead. `--no-browser`
 * only prints the sign-in URL; `--port` fixes the loopback port (default: a free one).
 *
 * `--device-code`: the former flow, for APP_CLIENT_AUTH=none only (a public client end to end), with the admin's
 * own Azure sign-in writing Key Vault. It refuses APP_CLIENT_AUTH=federated/key-vault-secret: Entra refuses a
 * device-code (public-client) refresh token redeemed with a client credential (AADSTS700025).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { TokenCredential } from '@azure/identity';
import { REFRESH_TOKEN_CONTENT_TYPE } from '../shared/auth/app-user.js';
import { EntraError, pollDeviceCode, requestDeviceCode } from '../shared/auth/entra.js';
import { createKeyVaultSecretStore } from '../shared/auth/key-vault.js';
import { parseConfig } from '../shared/config.js';
import { AdapterError } from '../shared/core/errors.js';
import { readLocalSettings } from './local-settings.js';

const say = (line = '') => process.stdout.write(`${line}\n`);
/** How long the admin has to complete the sign-in in the browser. */
const SIGN_IN_TIMEOUT_MS = 10 * 60_000;
const REQUEST_TIMEOUT_MS = 60_000;

/** The settings the device-code flow needs, with the flag that sets each. */
const DEVICE_CODE_SETTINGS = {
  KEY_VAULT_URL: '--vault-url',
  PARTNER_TENANT_ID: '--tenant',
  APP_REGISTRATION_CLIENT_ID: '--client-id',
} as const;

const DEVICE_CODE_WARNING = [
  'WARNING: --device-code makes the refresh token a public-client token, and Conditional Access tracks it:',
  '  - Microsoft recommends blocking the device code flow and ships a managed policy that blocks it; every later',
  '    refresh of this token counts as device code, so the chain dies with AADSTS53003 the day such a policy is on;',
  '  - the app registration needs "Allow public client flows" on, and APP_CLIENT_AUTH must be none: Entra refuses',
  '    a public-client refresh token redeemed with a client credential (AADSTS700025).',
  '  Prefer the browser flow (no --device-code). See docs/authentication.md#device-code-opt-in.',
];

const { values: flags } = parseArgs({
  options: {
    'app-url': { type: 'string' },
    'admin-key': { type: 'string' },
    'login-hint': { type: 'string' },
    port: { type: 'string' },
    'no-browser': { type: 'boolean', default: false },
    'device-code': { type: 'boolean', default: false },
    // --device-code only:
    'vault-url': { type: 'string' },
    tenant: { type: 'string' },
    'client-id': { type: 'string' },
    'secret-name': { type: 'string' },
    'authority-host': { type: 'string' },
  },
});

/** A failure the admin can act on: printed as is, after "Bootstrap failed:". */
class BootstrapError extends Error {}

/** Why a request never got an answer, in words: refused, unresolved, TLS, timeout. */
function unreachableReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const code = cause?.code ?? (error as { code?: string } | undefined)?.code;
  const name = (error as { name?: string } | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'no answer in time';
  if (code === 'ECONNREFUSED') return 'connection refused: nothing listens there';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'the connection was dropped';
  if (code && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code))
    return `its TLS certificate is not trusted (${code})`;
  return code ?? cause?.message ?? (error instanceof Error ? error.message : 'unknown error');
}

/** True for a request that got no HTTP answer at all (as opposed to an answer that says no). */
function isUnreachable(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  return (
    (error instanceof TypeError && error.message === 'fetch failed') || name === 'TimeoutError' || name === 'AbortError'
  );
}

/** Runs `call` against `url`; no answer at all becomes a BootstrapError naming the host and what to check. */
async function reaching<T>(what: string, url: string | URL, check: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!isUnreachable(error)) throw error;
    const host = new URL(url).host;
    throw new BootstrapError(`could not reach ${what} at ${host} (${unreachableReason(error)}). Check ${check}.`);
  }
}

function localEnv(): Record<string, string | undefined> {
  return { ...readLocalSettings(process.cwd()), ...process.env };
}

const base64url = (bytes: Buffer) => bytes.toString('base64url');

interface Problem {
  code?: string;
  detail?: string;
}

async function postToApp(
  appUrl: URL,
  path: string,
  adminKey: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const { response, text } = await reaching(
    'the app',
    appUrl,
    '--app-url (the function app, https://<app>.azurewebsites.net), that the app is running, and your network or proxy',
    async () => {
      const response = await fetch(new URL(path, appUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-functions-key': adminKey },
        body: JSON.stringify(body),
        // A redirect would carry the master key (a custom header) to wherever it points: refuse it.
        redirect: 'error',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      return { response, text: await response.text() };
    },
  );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = {};
  }
  return {
    status: response.status,
    body: parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {},
  };
}

/** The app's answer when it is not a success, as a sentence for the admin. */
function appRefusal(status: number, body: Problem): string {
  if (status === 401) {
    return "The app refused the admin key (401). Pass the function app's master key: az functionapp keys list -g <resource group> -n <app> --query masterKey -o tsv";
  }
  if (status === 404)
    return 'The app has no /api/app-user endpoints (404): check --app-url, and deploy the current version of the adapter.';
  if (!body.code) {
    return `The app answered ${status} without a problem document: is --app-url the function app itself (https://<app>.azurewebsites.net)?`;
  }
  const hint =
    body.code === 'configuration_invalid'
      ? ' Fix the app settings it names (GET /api/health lists them), then run this again.'
      : '';
  return `The app answered ${status} ${body.code}: ${body.detail ?? 'no detail'}${hint}`;
}

function openBrowser(url: string): void {
  const [command, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url.replaceAll('&', '^&')]]
        : ['xdg-open', [url]];
  try {
    const child = spawn(command, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // No browser here: the URL is printed anyway.
  }
}

/** Listens on loopback (IPv4 and, when available, IPv6) for the one redirect of the sign-in. */
async function loopbackListener(port: number, expectedState: string) {
  let settle: (result: { code: string } | { error: string }) => void = () => {};
  const result = new Promise<{ code: string } | { error: string }>((resolve) => {
    settle = resolve;
  });
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const params = url.searchParams;
    if (!params.has('code') && !params.has('error')) {
      res.writeHead(404).end();
      return;
    }
    const page = (status: number, text: string) =>
      res
        .writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
        .end(`${text}\n`);
    if (params.get('state') !== expectedState) {
      page(400, 'This sign-in does not belong to the running bootstrap (state mismatch). Start it again.');
      settle({
        error: 'The redirect carried another state than the one this bootstrap sent: start the bootstrap again.',
      });
      return;
    }
    const error = params.get('error');
    if (error) {
      const description = params.get('error_description') ?? '';
      page(400, `Sign-in failed: ${error}. ${description}\nThe terminal shows what to do.`);
      settle({ error: `Entra answered the sign-in with ${error}: ${description}` });
      return;
    }
    page(200, 'Signed in. You can close this window; the terminal shows the result.');
    settle({ code: params.get('code') as string });
  };
  const servers: Server[] = [];
  const v4 = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    v4.once('error', reject);
    v4.listen(port, '127.0.0.1', () => resolve());
  });
  servers.push(v4);
  const { port: bound } = v4.address() as AddressInfo;
  const v6 = createServer(handler);
  await new Promise<void>((resolve) => {
    v6.once('error', () => resolve());
    v6.listen(bound, '::1', () => {
      servers.push(v6);
      resolve();
    });
  });
  return {
    redirectUri: `http://localhost:${bound}`,
    result,
    close() {
      for (const server of servers) {
        server.closeAllConnections();
        server.close();
      }
    },
  };
}

async function browserFlow(): Promise<number> {
  const env = localEnv();
  const appUrlText = flags['app-url'] ?? env.BOOTSTRAP_APP_URL;
  const adminKey = flags['admin-key'] ?? env.BOOTSTRAP_ADMIN_KEY;
  const missing = [
    ...(appUrlText ? [] : ['--app-url (or BOOTSTRAP_APP_URL): the function app, https://<app>.azurewebsites.net']),
    ...(adminKey ? [] : ["--admin-key (or BOOTSTRAP_ADMIN_KEY): the function app's master key"]),
  ];
  if (missing.length > 0) {
    say('Cannot bootstrap: the settings are incomplete.');
    for (const problem of missing) say(`  - ${problem} is required`);
    say('  (--device-code keeps the former flow for APP_CLIENT_AUTH=none; see docs/authentication.md)');
    return 2;
  }
  let appUrl: URL;
  try {
    appUrl = new URL(appUrlText as string);
  } catch {
    say(`Cannot bootstrap: --app-url is not a URL (${appUrlText}).`);
    return 2;
  }
  const loopbackApp = ['localhost', '127.0.0.1', '[::1]'].includes(appUrl.hostname);
  if (appUrl.protocol !== 'https:' && !(appUrl.protocol === 'http:' && loopbackApp)) {
    say('Cannot bootstrap: --app-url must be https (the admin key travels with the request).');
    return 2;
  }
  const port = flags.port === undefined ? 0 : Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    say(`Cannot bootstrap: --port must be a port number (got ${flags.port}).`);
    return 2;
  }

  const verifier = base64url(randomBytes(32));
  const challenge = base64url(createHash('sha256').update(verifier).digest());
  const state = base64url(randomBytes(24));
  const listener = await loopbackListener(port, state);
  try {
    say('Partner Center sign-in for the adapter (Secure Application Model), redeemed by the app itself');
    say(`  app ${appUrl.origin}, loopback redirect ${listener.redirectUri}`);
    const authorize = await postToApp(appUrl, '/api/app-user/authorize', adminKey as string, {
      redirectUri: listener.redirectUri,
      codeChallenge: challenge,
      state,
      ...(flags['login-hint'] ? { loginHint: flags['login-hint'] } : {}),
    });
    if (authorize.status !== 200 || typeof authorize.body.authorizationUrl !== 'string') {
      say(appRefusal(authorize.status, authorize.body as Problem));
      return 1;
    }
    const url = authorize.body.authorizationUrl;
    say();
    say('1. Sign in as the Partner Center service account (Referrals Admin), with MFA, in the browser:');
    say(`   ${url}`);
    if (!flags['no-browser']) openBrowser(url);
    const timeout = new Promise<{ error: string }>((resolve) =>
      setTimeout(() => resolve({ error: 'No sign-in within 10 minutes.' }), SIGN_IN_TIMEOUT_MS).unref(),
    );
    const signIn = await Promise.race([listener.result, timeout]);
    if ('error' in signIn) {
      say(`Bootstrap failed: ${signIn.error}`);
      return 1;
    }
    say('2. Signed in; the app redeems the sign-in with its managed identity and asks Partner Center.');
    const redeem = await postToApp(appUrl, '/api/app-user/redeem', adminKey as string, {
      code: signIn.code,
      codeVerifier: verifier,
      redirectUri: listener.redirectUri,
    });
    const partnerCenter = (redeem.body.partnerCenter ?? {}) as { accepted?: boolean; code?: string; detail?: string };
    if (redeem.status === 200 && redeem.body.stored === true) {
      say(
        `3. The app stored the refresh token in Key Vault secret "${String(redeem.body.secretName)}" (version ${String(redeem.body.version)}).`,
      );
      if (partnerCenter.accepted) {
        say('4. Partner Center accepted the token: a test call to the Referrals API succeeded.');
      } else {
        say(
          `4. WARNING: Partner Center could not be asked (${partnerCenter.code ?? 'unknown'}): ${partnerCenter.detail ?? ''}`,
        );
        say('   The token is stored; check /api/health after the first update event.');
      }
      say('   No token was sent to this machine. Run this again if /api/health reports the refresh token invalid.');
      return 0;
    }
    if (redeem.status === 422 && partnerCenter.accepted === false) {
      say(`Partner Center refused the new token (${partnerCenter.code}); it was NOT stored.`);
      say(`  ${partnerCenter.detail ?? ''}`);
      return 1;
    }
    say(`Bootstrap failed: ${appRefusal(redeem.status, redeem.body as Problem)}`);
    return 1;
  } finally {
    listener.close();
  }
}

/**
 * Key Vault's refusal of the admin's own write, as what to do: the store's messages speak of the app's identity,
 * but here the admin's Azure sign-in writes.
 */
function keyVaultFailure(error: unknown, host: string): unknown {
  const cause = error instanceof AdapterError ? error.cause : error;
  const causeName = (cause as { name?: string } | undefined)?.name ?? '';
  if (/CredentialUnavailableError|AggregateAuthenticationError|AuthenticationRequiredError/.test(causeName)) {
    return new BootstrapError(
      `no Azure sign-in to write Key Vault ${host} with (${causeName}): run "az login" (or "azd auth login") as an admin with Key Vault Secrets Officer on the vault, then run this again.`,
    );
  }
  if (error instanceof AdapterError && error.code === 'upstream_auth_failed') {
    return new BootstrapError(
      `Key Vault ${host} refused your Azure sign-in (${error.message.match(/HTTP \d+/)?.[0] ?? 'refused'}): the account of "az login" needs Key Vault Secrets Officer on the vault (docs/deploy.md#roles); a role assigned minutes ago may not apply yet.`,
    );
  }
  if (error instanceof AdapterError && error.code === 'upstream_unavailable') {
    return new BootstrapError(
      `could not reach Key Vault at ${host} (${unreachableReason(cause)}). Check --vault-url (or KEY_VAULT_URL, https://<vault>.vault.azure.net), and your network or proxy.`,
    );
  }
  return error;
}

async function adminCredential(): Promise<TokenCredential> {
  const identity = await import('@azure/identity');
  if (process.env.IDENTITY_ENDPOINT) return new identity.ManagedIdentityCredential();
  return new identity.ChainedTokenCredential(
    new identity.AzureCliCredential(),
    new identity.AzureDeveloperCliCredential(),
  );
}

async function deviceCodeFlow(): Promise<number> {
  for (const line of DEVICE_CODE_WARNING) say(line);
  say();
  const env = localEnv();
  const overrides: Record<string, string | undefined> = {
    KEY_VAULT_URL: flags['vault-url'],
    PARTNER_TENANT_ID: flags.tenant,
    APP_REGISTRATION_CLIENT_ID: flags['client-id'],
    REFRESH_TOKEN_SECRET_NAME: flags['secret-name'],
    AZURE_AUTHORITY_HOST: flags['authority-host'],
  };
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined) env[name] = value;
  const clientAuth = env.APP_CLIENT_AUTH?.trim() || 'federated';
  if (clientAuth !== 'none') {
    say(
      `Refusing --device-code with APP_CLIENT_AUTH=${clientAuth}: the app would redeem a public-client refresh token with a client credential, which Entra refuses (AADSTS700025). Use the browser flow, or set APP_CLIENT_AUTH=none on the app and here.`,
    );
    return 2;
  }
  // Only what this flow uses: the idempotency store, the webhook secrets and the rest of the app's settings are
  // none of its business (a setting it does not use must not stop it).
  const missing = Object.entries(DEVICE_CODE_SETTINGS).flatMap(([name, flag]) =>
    env[name]?.trim() ? [] : [`${flag} (or ${name}) is required`],
  );
  const used = Object.fromEntries(
    [...Object.keys(DEVICE_CODE_SETTINGS), 'REFRESH_TOKEN_SECRET_NAME', 'AZURE_AUTHORITY_HOST'].map((name) => [
      name,
      env[name],
    ]),
  );
  const config = parseConfig({
    ...used,
    PARTNER_CENTER_AUTH: 'app-user',
    APP_CLIENT_AUTH: 'none',
    IDEMPOTENCY_STORE: 'memory',
  });
  if (missing.length > 0 || !config.ok) {
    say('Cannot bootstrap: the settings are incomplete.');
    const problems = [
      ...missing,
      ...(config.ok ? [] : config.problems.filter((p) => !p.includes(' is required when '))),
    ];
    for (const problem of problems) say(`  - ${problem}`);
    return 2;
  }
  const { auth, partnerCenter } = config.config;
  if (auth.mode !== 'app-user') return 2;
  const authority = `${auth.authorityHost}/${auth.tenantId}`;
  const toEntra = <T>(call: () => Promise<T>) =>
    reaching(
      'the Entra authority',
      authority,
      '--authority-host (or AZURE_AUTHORITY_HOST; https://login.microsoftonline.com by default), --tenant, and your network or proxy',
      call,
    );
  const endpoint = { authorityHost: auth.authorityHost, tenantId: auth.tenantId, clientId: auth.appClientId };
  say('Partner Center sign-in for the adapter (device code, public client)');
  say(`  tenant ${auth.tenantId}, app registration ${auth.appClientId}`);
  say(`  refresh token goes to ${auth.keyVaultUrl}, secret "${auth.refreshTokenSecretName}"`);
  say();

  const code = await toEntra(() => requestDeviceCode(endpoint, `${partnerCenter.scope} offline_access`));
  say('1. Sign in as the Partner Center service account (Referrals Admin), with MFA:');
  say(`   ${code.message || `open ${code.verificationUri} and enter the code ${code.userCode}`}`);
  say(`   (user code: ${code.userCode})`);
  const tokens = await toEntra(() => pollDeviceCode(endpoint, code));
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
  const stored = await store
    .set(auth.refreshTokenSecretName, tokens.refreshToken, REFRESH_TOKEN_CONTENT_TYPE)
    .catch((error: unknown) => {
      throw keyVaultFailure(error, new URL(auth.keyVaultUrl).host);
    });
  say(`3. Stored the refresh token in Key Vault secret "${auth.refreshTokenSecretName}" (version ${stored.version}).`);
  say('   It was not printed or saved anywhere else. The adapter redeems and rotates it from now on;');
  say('   run this again if /api/health reports the refresh token invalid or close to its 90-day limit.');
  return 0;
}

(flags['device-code'] ? deviceCodeFlow() : browserFlow()).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const detail =
      error instanceof AdapterError || error instanceof EntraError || error instanceof BootstrapError
        ? error.message
        : error instanceof Error
          ? `${error.name}: ${error.message}`
          : 'unknown error';
    say(`Bootstrap failed: ${detail}`);
    process.exit(1);
  },
);
