/**
 * `npm start`: the app on http://127.0.0.1:${PORT:-7071}/api/..., with no Azure account and no `func`.
 *
 * - Reads `local.settings.json` `Values` like `func` does (variables already in the environment win).
 * - With `PARTNER_CENTER_BASE_URL` unset, starts the embedded Partner Center sandbox and points the app at it.
 * - With `IDENTITY_ENDPOINT` unset, starts the embedded managed-identity endpoint and points
 *   `@azure/identity` at it, so no local run ever reaches the cloud metadata address.
 * - With no storage configured (or `UseDevelopmentStorage=true`), starts Azurite's Table and Queue services
 *   for the idempotency store, the deliveries and the delivery queue (AzureWebJobsStorage then carries its
 *   TableEndpoint and QueueEndpoint), which the queue triggers read too (unless IDEMPOTENCY_STORE=memory).
 * - Runs the built app in dist/ by default; `--package` builds the deploy package (npm run package) and
 *   runs that instead, `--app-dir <dir>` runs the app in another folder (an extracted deploy zip): its
 *   package.json `main`, with only its own files and node_modules, like the worker in Azure.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseConfig } from '../shared/config.js';
import { readLocalSettings } from '../tools/local-settings.js';
import { startAzurite } from './emulators/azurite.js';
import { startIdentityEmulator } from './emulators/identity.js';
import { startHost } from './host/host.js';
import { SEED_IDS } from './sandbox/seed.js';
import { startPartnerCenterSandbox } from './sandbox/server.js';

/** The repository: local.settings.json, and the app unless --package or --app-dir says otherwise. */
const repoDir = fileURLToPath(new URL('../../', import.meta.url));
const closers: Array<() => Promise<void>> = [];
const say = (line = '') => process.stdout.write(`${line}\n`);

function applyLocalSettings(): void {
  const values = readLocalSettings(repoDir);
  for (const [name, value] of Object.entries(values)) process.env[name] ??= value;
  if (Object.keys(values).length > 0) say(`Read local.settings.json (${Object.keys(values).length} values).`);
}

/** The app folder to serve: the repository's build, the freshly built deploy package, or --app-dir. */
async function appFolder(): Promise<string> {
  const { values } = parseArgs({
    options: { package: { type: 'boolean', default: false }, 'app-dir': { type: 'string' } },
  });
  if (values['app-dir']) return resolve(values['app-dir']);
  if (!values.package) return repoDir;
  const { buildPackage, describePackage } = await import('../tools/package.js');
  const result = await buildPackage();
  say(describePackage(result));
  return result.appDir;
}

/** `PORT` or `SANDBOX_PORT` as a port number; throws naming the setting. */
function portSetting(name: 'PORT' | 'SANDBOX_PORT', fallback: number): number {
  const raw = process.env[name];
  const port = raw === undefined || raw.trim() === '' ? fallback : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${name} must be a port number, 0 to 65535 (got "${raw}"); 0 picks any free port`);
  return port;
}

/** Starts a listener on the port of setting `name`; a port in use says which one and how to change it. */
async function listenOn<T>(name: 'PORT' | 'SANDBOX_PORT', port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw error;
    const what = name === 'PORT' ? 'the app' : 'the Partner Center sandbox';
    throw new Error(
      `port ${port} on 127.0.0.1 (${name}, for ${what}) is ${code === 'EADDRINUSE' ? 'already in use (another npm start, func start or program?)' : 'not allowed for this user'}. ` +
        `Set ${name} to a free port: ${name}=${port === 7071 ? 7072 : port + 1} npm start, or "${name}" in local.settings.json; ${name}=0 picks any free port.`,
    );
  }
}

async function main(): Promise<void> {
  const appDir = await appFolder();
  applyLocalSettings();

  let sandboxUrl: string | undefined;
  if (!process.env.PARTNER_CENTER_BASE_URL) {
    const sandboxPort = portSetting('SANDBOX_PORT', 0);
    const sandbox = await listenOn('SANDBOX_PORT', sandboxPort, () => startPartnerCenterSandbox({ port: sandboxPort }));
    closers.push(() => sandbox.close());
    sandboxUrl = sandbox.url;
    process.env.PARTNER_CENTER_BASE_URL = sandbox.url;
  }
  if (!process.env.IDENTITY_ENDPOINT) {
    const identity = await startIdentityEmulator();
    closers.push(() => identity.close());
    process.env.IDENTITY_ENDPOINT = identity.endpoint;
    process.env.IDENTITY_HEADER = identity.header;
    if (!sandboxUrl) {
      say('Note: IDENTITY_ENDPOINT is not set, so tokens come from the embedded managed-identity emulator;');
      say('      a real Partner Center will refuse them. See docs/authentication.md.');
    }
  }

  const storage = process.env.AzureWebJobsStorage;
  const tableUri = process.env.AzureWebJobsStorage__tableServiceUri;
  if (
    process.env.IDEMPOTENCY_STORE !== 'memory' &&
    !tableUri &&
    (!storage || storage === 'UseDevelopmentStorage=true')
  ) {
    const azurite = await startAzurite();
    closers.push(() => azurite.stop());
    process.env.AzureWebJobsStorage = azurite.connectionString;
    say(
      `Started Azurite (Table and Queue services, in memory) on 127.0.0.1:${azurite.port} and :${azurite.queuePort} for the idempotency store and queue triggers.`,
    );
  }

  const config = parseConfig(process.env);
  if (!config.ok) {
    process.stderr.write(
      `Configuration is invalid, not starting:\n${config.problems.map((p) => `  - ${p}`).join('\n')}\n`,
    );
    await shutdown(1);
    return;
  }

  const port = portSetting('PORT', 7071);
  // Dev only: with LOCAL_HOST_MASTER_KEY set, the host enforces keys like `func start --enableAuth`.
  const masterKey = process.env.LOCAL_HOST_MASTER_KEY || undefined;
  const host = await listenOn('PORT', port, () => startHost({ appDir, port, ...(masterKey ? { masterKey } : {}) }));
  closers.unshift(() => host.close());

  say();
  if (appDir !== repoDir) say(`App: ${appDir}`);
  say(`Functions (${host.app.entryPoints.length} entry points from "${host.app.main}"):`);
  for (const fn of host.app.functions) {
    say(
      `  ${fn.name}: [${fn.methods.join(',')}] ${host.url}/api/${fn.route}  (auth: ${fn.authLevel}, ${masterKey && fn.authLevel !== 'anonymous' ? 'master key required' : 'not enforced locally'})`,
    );
  }
  for (const timer of host.app.timers) {
    say(`  ${timer.name}: timer "${timer.schedule}" (UTC; run it now: POST ${host.url}/admin/functions/${timer.name})`);
  }
  for (const fn of host.app.queues) {
    const polling = host.queues.find((q) => q.name === fn.name);
    const queue = polling
      ? `"${polling.queue}"${polling.queue === fn.queueName ? '' : ` (${fn.queueName})`}`
      : `"${fn.queueName}"`;
    say(
      `  ${fn.name}: queue ${queue}, connection ${fn.connection || 'AzureWebJobsStorage'}${polling ? '' : ' (not started, see above)'}`,
    );
  }
  const { delivery } = config.config;
  say(
    delivery.queue === undefined
      ? `Delivery: synchronous only (asynchronous delivery needs the Table store and a queue; IDEMPOTENCY_STORE=${process.env.IDEMPOTENCY_STORE || 'table'}).`
      : `Delivery: ${delivery.default} by default (DEFAULT_DELIVERY); queue "${delivery.queueName}", poison queue "${delivery.poisonQueueName}".`,
  );
  say();
  if (sandboxUrl) {
    say(`Running against the embedded Partner Center SANDBOX at ${sandboxUrl} (in memory, seeded, reset on restart).`);
    say('Set PARTNER_CENTER_BASE_URL to use another Partner Center endpoint.');
    say('Seeded referrals:');
    for (const [name, id] of Object.entries(SEED_IDS)) say(`  ${id}  ${name}`);
    say();
    say('Try it: move the seeded New/Received referral to Active/Accepted:');
    const body = JSON.stringify({ referralId: SEED_IDS.newReceived, status: 'Active' });
    say(`  curl -sS -X POST '${host.url}/api/referral-updates' -H 'Content-Type: application/json' -d '${body}'`);
    if (delivery.queue !== undefined) {
      say('Or queue an update (202 + Location), then poll the Location URL until it answers 200:');
      const queued = JSON.stringify({ referralId: SEED_IDS.newPending, status: 'Active', dealValue: 10 });
      say(
        `  curl -si -X POST '${host.url}/api/referral-updates' -H 'Prefer: respond-async' -H 'Content-Type: application/json' -d '${queued}'`,
      );
    }
  } else {
    say(`Running against Partner Center at ${process.env.PARTNER_CENTER_BASE_URL}.`);
  }
  say();
  say('Press Ctrl+C to stop.');
}

async function shutdown(code: number): Promise<void> {
  for (const close of closers.splice(0)) await close().catch(() => undefined);
  process.exit(code);
}

process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));
main().catch(async (error: unknown) => {
  process.stderr.write(`Could not start: ${error instanceof Error ? error.message : String(error)}\n`);
  await shutdown(1);
});
