/**
 * `npm run auth:bootstrap` as a partner admin runs it (the built CLI in plain Node), each documented invocation
 * (docs/authentication.md#the-bootstrap) end to end against the emulators and the built app under the local host
 * with keys enforced. The browser is played by an HTTP client: it opens the sign-in URL at the Entra emulator and
 * follows the redirect to the CLI's loopback listener.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { type AuthWorld, playBrowser, SECRET_NAME, startAuthWorld } from '../support/auth-stack.js';
import {
  type HostProcess,
  isolatedEnv,
  REPO_ROOT,
  type StartedProcess,
  startHostProcess,
  startProcess,
} from '../support/stack.js';

const MASTER_KEY = 'local-master-key-for-the-bootstrap-tests';

/** The CLI's printed sign-in URL, opened by the "browser"; resolves with the browser's last answer. */
async function signIn(cli: StartedProcess) {
  const [, url] = await cli.waitFor(/^ {3}(https:\/\/127\.0\.0\.1:\d+\/\S+\/authorize\?\S+)$/m);
  return { url: url as string, browser: await playBrowser(url as string) };
}

function bootstrap(args: string[], env: Record<string, string> = {}): StartedProcess {
  return startProcess(['dist/tools/auth-bootstrap.js', ...args], isolatedEnv(env));
}

/** Settings the bootstrap never uses, set to values the app would refuse: they must not stop it (#11 item 3). */
const UNUSED_AND_INVALID = { IDEMPOTENCY_STORE: 'table', AzureWebJobsStorage: '', WEBHOOK_SECRETS: ',' };

interface Invocation {
  where: string;
  env: Record<string, string>;
  flags: string[];
}

/**
 * Every `npm run auth:bootstrap -- …` that README.md, docs/authentication.md and docs/deploy.md show, as the
 * variables before it and the flags it passes (command substitutions such as `"$(az …)"` are values).
 */
function documentedInvocations(): Invocation[] {
  return ['README.md', 'docs/authentication.md', 'docs/deploy.md'].flatMap((where) => {
    const text = readFileSync(join(REPO_ROOT, where), 'utf8').replace(/\\\n\s*/g, ' ');
    return [...text.matchAll(/((?:[A-Z_]+=\S+\s+)*)npm run auth:bootstrap -- ([^`\n]*)/g)].map((match) => {
      let command = match[2] as string;
      for (let before = ''; before !== command; ) {
        before = command;
        command = command.replace(/\$\([^()]*\)/g, 'x');
      }
      const env = Object.fromEntries(
        (match[1] as string)
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map((pair) => pair.split('=') as [string, string]),
      );
      return { where, env, flags: command.split(/\s+/).filter((token) => token.startsWith('--')) };
    });
  });
}

/** The CLI's arguments for `flags`, each with this world's value. */
function argsFor(flags: string[], values: Record<string, string>): string[] {
  return flags.flatMap((flag) => {
    if (flag === '--device-code' || flag === '--no-browser') return [flag];
    const value = values[flag];
    if (value === undefined) throw new Error(`a documented flag the test does not know: ${flag}`);
    return [flag, value];
  });
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

it('the docs show the browser flow in README.md, docs/authentication.md and docs/deploy.md, and the device code', () => {
  const found = documentedInvocations().map(({ where, flags }) => `${where}: ${flags.join(' ')}`);
  expect(found).toEqual([
    'README.md: --app-url --admin-key',
    'docs/authentication.md: --app-url --admin-key --login-hint',
    'docs/authentication.md: --device-code --vault-url --tenant --client-id',
    'docs/deploy.md: --app-url --admin-key',
  ]);
});

describe('the browser flow: the app redeems the sign-in with its managed identity', () => {
  let world: AuthWorld;
  let app: HostProcess;
  beforeAll(async () => {
    world = await startAuthWorld();
    app = await startHostProcess({ ...world.env, LOCAL_HOST_MASTER_KEY: MASTER_KEY });
  });
  afterAll(async () => {
    await app?.host.stop();
    await world?.close();
  });

  it('--app-url --admin-key: stores a confidential refresh token that Partner Center accepts, no token leaves the app', async () => {
    const cli = bootstrap(['--app-url', app.hostUrl, '--admin-key', MASTER_KEY, '--no-browser']);
    const { url, browser } = await signIn(cli);
    expect(browser).toMatchObject({ status: 200, text: expect.stringContaining('Signed in.') });
    expect(await cli.exited, cli.output()).toBe(0);

    const query = new URL(url).searchParams;
    expect(query.get('redirect_uri')).toMatch(/^http:\/\/localhost:\d+$/);
    expect(query.get('code_challenge_method')).toBe('S256');
    expect(query.get('prompt')).toBe('login');
    // The code was redeemed by the app, with the user-assigned identity's assertion: a confidential client.
    const codeGrant = world.entra.redemptions.find((r) => r.grantType === 'authorization_code');
    expect(codeGrant).toMatchObject({ clientAuth: 'assertion', status: 200 });
    const stored = world.vault.latest(SECRET_NAME);
    expect(cli.output()).toContain(
      `The app stored the refresh token in Key Vault secret "${SECRET_NAME}" (version ${stored?.version})`,
    );
    expect(cli.output()).toContain('Partner Center accepted the token: a test call to the Referrals API succeeded.');
    expect(world.sandbox.requests.at(-1)?.path).toBe('/v1.0/engagements/referrals?$top=1');
    for (const secret of world.secrets()) expect(cli.output()).not.toContain(secret);
    expect(cli.output()).not.toContain(codeGrant?.code);

    // Production redeems it the same way (federated assertion), and Partner Center accepts what it gets.
    const answer = await app.post(
      { referralId: SEED_IDS.activeAccepted, notes: 'x', dryRun: true },
      { headers: { 'x-functions-key': MASTER_KEY } },
    );
    expect(answer.status, answer.text).toBe(200);
    const refresh = world.entra.redemptions.filter((r) => r.grantType === 'refresh_token');
    expect(refresh.at(-1)).toMatchObject({ refreshToken: stored?.value, clientAuth: 'assertion', status: 200 });
  });

  it('BOOTSTRAP_APP_URL, BOOTSTRAP_ADMIN_KEY and --login-hint: the same, with the service account pre-filled', async () => {
    const cli = bootstrap(['--login-hint', 'referrals@contoso.example', '--no-browser'], {
      BOOTSTRAP_APP_URL: app.hostUrl,
      BOOTSTRAP_ADMIN_KEY: MASTER_KEY,
    });
    const { url } = await signIn(cli);
    expect(await cli.exited, cli.output()).toBe(0);
    expect(new URL(url).searchParams.get('login_hint')).toBe('referrals@contoso.example');
  });

  it('a sign-in without MFA: Partner Center answers 900421, the token is not stored, the admin reads why', async () => {
    const before = world.vault.versions(SECRET_NAME).length;
    world.entra.signInWith({ mfa: false });
    try {
      const cli = bootstrap(['--app-url', app.hostUrl, '--admin-key', MASTER_KEY, '--no-browser']);
      await signIn(cli);
      expect(await cli.exited).toBe(1);
      expect(cli.output()).toContain('Partner Center refused the new token (mfa_required); it was NOT stored.');
      expect(cli.output()).toContain('Partner Center requires multi-factor authentication (error 900421)');
      expect(cli.output()).toContain('sign the service account in with MFA');
      expect(world.vault.versions(SECRET_NAME)).toHaveLength(before);
      expect(app.host.output()).toContain('PARTNER_CENTER_MFA_REQUIRED');
    } finally {
      world.entra.signInWith({ mfa: true });
    }
  });

  it('a wrong admin key: the host answers 401 and the admin is told which key to pass', async () => {
    const cli = bootstrap(['--app-url', app.hostUrl, '--admin-key', 'not-the-master-key', '--no-browser']);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain("The app refused the admin key (401). Pass the function app's master key");
  });

  it('the admin functions take only the master key, like the Functions host', async () => {
    const body = JSON.stringify({ code: 'x', codeVerifier: 'y'.repeat(43), redirectUri: 'http://localhost:1' });
    const noKey = await fetch(`${app.hostUrl}/api/app-user/redeem`, { method: 'POST', body });
    expect(noKey.status).toBe(401);
    const withKey = await fetch(`${app.hostUrl}/api/app-user/redeem?code=${MASTER_KEY}`, { method: 'POST', body });
    expect(withKey.status).toBe(502);
    expect(await withKey.json()).toMatchObject({
      code: 'upstream_auth_failed',
      detail: expect.stringContaining('the sign-in code expired, was already used, or belongs to another app'),
    });
  });

  it('a redirect URI other than the sign-in one is refused with the admin-readable reason', async () => {
    const cli = bootstrap(['--app-url', app.hostUrl, '--admin-key', MASTER_KEY, '--no-browser']);
    const [, url] = await cli.waitFor(/^ {3}(https:\/\/\S+\/authorize\?\S+)$/m);
    // Play the browser, but hand the code to the app with another loopback port than the sign-in used.
    const location = (await fetch(url as string, { redirect: 'manual' })).headers.get('location') as string;
    const code = new URL(location).searchParams.get('code');
    const answer = await fetch(`${app.hostUrl}/api/app-user/redeem`, {
      method: 'POST',
      headers: { 'x-functions-key': MASTER_KEY },
      body: JSON.stringify({ code, codeVerifier: 'v'.repeat(43), redirectUri: 'http://localhost:1' }),
    });
    expect(answer.status).toBe(502);
    const { detail } = (await answer.json()) as { detail: string };
    expect(detail).toContain('AADSTS500112');
    expect(detail).toContain('the redirect URI differs from the one of the sign-in, or is not registered');
    await cli.stop();
  });

  it('runs every documented browser invocation as shown, whatever the settings it does not use', async () => {
    const browserFlows = documentedInvocations().filter(({ flags }) => !flags.includes('--device-code'));
    expect(browserFlows.length).toBeGreaterThanOrEqual(3);
    for (const { where, env, flags } of browserFlows) {
      const args = argsFor(flags, {
        '--app-url': app.hostUrl,
        '--admin-key': MASTER_KEY,
        '--login-hint': 'referrals@contoso.example',
      });
      const cli = bootstrap([...args, '--no-browser'], { ...UNUSED_AND_INVALID, ...env });
      const { browser } = await signIn(cli);
      expect(browser.status, where).toBe(200);
      expect(await cli.exited, `${where}\n${cli.output()}`).toBe(0);
      expect(cli.output()).toContain('Partner Center accepted the token');
    }
  });

  it('an app URL nothing answers on: names the host and what to check, no TypeError', async () => {
    const port = await closedPort();
    const cli = bootstrap(['--app-url', `http://127.0.0.1:${port}`, '--admin-key', MASTER_KEY, '--no-browser']);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain(
      `Bootstrap failed: could not reach the app at 127.0.0.1:${port} (connection refused: nothing listens there). Check --app-url`,
    );
    expect(cli.output()).not.toMatch(/TypeError|fetch failed|^\s+at /m);
  });

  it('an app URL that is not the app (here the identity endpoint): says to check --app-url', async () => {
    const notTheApp = new URL(world.identity.endpoint).origin;
    const cli = bootstrap(['--app-url', notTheApp, '--admin-key', MASTER_KEY, '--no-browser']);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain('check --app-url');
  });

  it('an app URL that redirects: the master key is never sent on, the bootstrap stops', async () => {
    const keysSeen: Array<string | undefined> = [];
    const target = createHttpServer((req, res) => {
      keysSeen.push(req.headers['x-functions-key'] as string | undefined);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    const redirecting = createHttpServer((req, res) =>
      res.writeHead(307, { location: `${targetUrl}${req.url}` }).end(),
    );
    await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
    try {
      const appUrl = `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}`;
      const cli = bootstrap(['--app-url', appUrl, '--admin-key', MASTER_KEY, '--no-browser']);
      expect(await cli.exited).toBe(1);
      expect(keysSeen).toEqual([]);
    } finally {
      await new Promise((resolve) => redirecting.close(resolve));
      await new Promise((resolve) => target.close(resolve));
    }
  });

  it('refuses to run without the app URL and the admin key, naming them', async () => {
    const cli = bootstrap([]);
    expect(await cli.exited).toBe(2);
    expect(cli.output()).toContain('--app-url (or BOOTSTRAP_APP_URL)');
    expect(cli.output()).toContain('--admin-key (or BOOTSTRAP_ADMIN_KEY)');
  });
});

describe('--device-code, the explicit opt-in', () => {
  let world: AuthWorld;
  beforeAll(async () => {
    world = await startAuthWorld({ allowPublicClient: true });
  });
  afterAll(async () => {
    await world?.close();
  });
  const deviceEnv = () => {
    const { PARTNER_CENTER_AUTH: _mode, PARTNER_CENTER_BASE_URL: _url, ...env } = world.env;
    return env;
  };

  it('refuses APP_CLIENT_AUTH=federated (the default): Entra would refuse the token with AADSTS700025', async () => {
    const cli = bootstrap(['--device-code'], deviceEnv());
    expect(await cli.exited).toBe(2);
    expect(cli.output()).toContain('WARNING: --device-code makes the refresh token a public-client token');
    expect(cli.output()).toContain('AADSTS53003');
    expect(cli.output()).toContain('Refusing --device-code with APP_CLIENT_AUTH=federated');
    expect(cli.output()).toContain('AADSTS700025');
    expect(world.entra.redemptions).toHaveLength(0);
  });

  it('runs the documented invocation as shown (APP_CLIENT_AUTH=none, --vault-url, --tenant, --client-id), whatever the settings it does not use', async () => {
    const [documented] = documentedInvocations().filter(({ flags }) => flags.includes('--device-code'));
    expect(documented?.env).toEqual({ APP_CLIENT_AUTH: 'none' });
    const {
      KEY_VAULT_URL: vaultUrl,
      PARTNER_TENANT_ID: tenant,
      APP_REGISTRATION_CLIENT_ID: clientId,
      AZURE_CLIENT_ID: _identity,
      ...rest
    } = deviceEnv();
    const args = argsFor(documented?.flags ?? [], {
      '--vault-url': vaultUrl as string,
      '--tenant': tenant as string,
      '--client-id': clientId as string,
    });
    // The flags alone name the vault, tenant and app; the rest of the environment is the emulators' endpoints.
    const cli = bootstrap(args, { ...rest, ...UNUSED_AND_INVALID, ...documented?.env });
    const [, userCode] = await cli.waitFor(/user code: (\S+)\)/);
    world.entra.approveDevice(userCode as string);
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.output()).toContain(`Stored the refresh token in Key Vault secret "${SECRET_NAME}"`);
  });

  it('names what is missing by its flag', async () => {
    const { KEY_VAULT_URL: _v, PARTNER_TENANT_ID: _t, APP_REGISTRATION_CLIENT_ID: _c, ...rest } = deviceEnv();
    const cli = bootstrap(['--device-code'], { ...rest, ...UNUSED_AND_INVALID, APP_CLIENT_AUTH: 'none' });
    expect(await cli.exited).toBe(2);
    expect(cli.output()).toContain('--vault-url (or KEY_VAULT_URL) is required');
    expect(cli.output()).toContain('--tenant (or PARTNER_TENANT_ID) is required');
    expect(cli.output()).toContain('--client-id (or APP_REGISTRATION_CLIENT_ID) is required');
    expect(cli.output()).not.toContain('IDEMPOTENCY_STORE');
  });

  it('an authority nothing answers on: names the host and what to check, no TypeError', async () => {
    const port = await closedPort();
    const cli = bootstrap(['--device-code', '--authority-host', `https://127.0.0.1:${port}`], {
      ...deviceEnv(),
      APP_CLIENT_AUTH: 'none',
    });
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain(
      `Bootstrap failed: could not reach the Entra authority at 127.0.0.1:${port} (connection refused: nothing listens there). Check --authority-host`,
    );
    expect(cli.output()).not.toMatch(/TypeError|fetch failed|^\s+at /m);
  });

  it('a vault nothing answers on: names the host and what to check, once signed in', async () => {
    const port = await closedPort();
    const cli = bootstrap(['--device-code', '--vault-url', `https://127.0.0.1:${port}`], {
      ...deviceEnv(),
      APP_CLIENT_AUTH: 'none',
    });
    const [, userCode] = await cli.waitFor(/user code: (\S+)\)/);
    world.entra.approveDevice(userCode as string);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain(`Bootstrap failed: could not reach Key Vault at 127.0.0.1:${port} (`);
    expect(cli.output()).toContain('Check --vault-url');
  });

  it('no Azure sign-in on the admin machine: says to run az login, with the role it needs', async () => {
    const { IDENTITY_ENDPOINT: _endpoint, IDENTITY_HEADER: _header, ...env } = deviceEnv();
    const cli = bootstrap(['--device-code'], { ...env, APP_CLIENT_AUTH: 'none', PATH: '/nonexistent' });
    const [, userCode] = await cli.waitFor(/user code: (\S+)\)/);
    world.entra.approveDevice(userCode as string);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain('Bootstrap failed: no Azure sign-in to write Key Vault');
    expect(cli.output()).toContain('run "az login"');
  });

  it('with APP_CLIENT_AUTH=none: signs in with a device code and stores a public-client token, with the warning', async () => {
    const cli = bootstrap(['--device-code', '--vault-url', world.env.KEY_VAULT_URL as string], {
      ...deviceEnv(),
      APP_CLIENT_AUTH: 'none',
    });
    const [, userCode] = await cli.waitFor(/user code: (\S+)\)/);
    expect(cli.output()).toContain('WARNING: --device-code');
    world.entra.approveDevice(userCode as string);
    expect(await cli.exited, cli.output()).toBe(0);
    const stored = world.vault.latest(SECRET_NAME);
    expect(cli.output()).toContain(
      `Stored the refresh token in Key Vault secret "${SECRET_NAME}" (version ${stored?.version})`,
    );
    for (const secret of world.secrets()) expect(cli.output()).not.toContain(secret);

    // Redeemable as the public client it was issued to; a federated redemption is refused as Entra does.
    const publicTokens = world.tokenProvider({ auth: { ...world.auth, clientAuth: 'none' } });
    expect(world.entra.isAccessToken(await publicTokens.getToken())).toBe(true);
    world.vault.setSecret(SECRET_NAME, stored?.value as string);
    await expect(world.tokenProvider().getToken()).rejects.toMatchObject({ logCode: 'APP_CLIENT_AUTH_FAILED' });
    expect(world.entra.redemptions.at(-1)).toMatchObject({ clientAuth: 'assertion', status: 401 });
  });
});

describe('--device-code with "Allow public client flows" off (the recommended app registration)', () => {
  let world: AuthWorld;
  beforeAll(async () => {
    world = await startAuthWorld();
  });
  afterAll(async () => {
    await world?.close();
  });

  it('Entra refuses the device code poll (AADSTS7000218) and the admin reads it', async () => {
    const { PARTNER_CENTER_AUTH: _mode, PARTNER_CENTER_BASE_URL: _url, ...env } = world.env;
    const cli = bootstrap(['--device-code'], { ...env, APP_CLIENT_AUTH: 'none' });
    const [, userCode] = await cli.waitFor(/user code: (\S+)\)/);
    world.entra.approveDevice(userCode as string);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain('Bootstrap failed: Entra answered 401 invalid_client (AADSTS7000218)');
    expect(world.vault.latest(SECRET_NAME)).toBeUndefined();
  });
});
