/**
 * The whole thing over real loopback HTTP: the Partner Center sandbox and the managed-identity
 * emulator in the test process (so tests can inspect them and inject faults), and the built app served
 * by the local host in a child process running plain Node, exactly as `npm start` runs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { type IdentityEmulator, startIdentityEmulator } from '../../dev/emulators/identity.js';
import { type PartnerCenterSandbox, startPartnerCenterSandbox } from '../../dev/sandbox/server.js';
import { withoutServiceSettings } from '../../dev/support/isolated-env.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const LOOPBACK_GUARD = fileURLToPath(new URL('../../dev/support/loopback-guard.mjs', import.meta.url));

/** The parent's environment without anything that would point the child at a real service. */
export function isolatedEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { ...withoutServiceSettings(), NODE_OPTIONS: `--import=${LOOPBACK_GUARD}`, ...extra };
}

export interface StartedProcess {
  child: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** Resolves with the first match of `pattern` in the output. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code when the process ends by itself. */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

export function startProcess(args: string[], env: Record<string, string>): StartedProcess {
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => output,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (match) {
            cleanup();
            resolve(match);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; output so far:\n${output}`));
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          reject(new Error(`process exited before printing ${pattern}; output:\n${output}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

/** Small retry settings so fault tests run in seconds; everything else is the app's default. */
export const FAST_RETRY_ENV = {
  RETRY_BASE_DELAY_MS: '5',
  RETRY_MAX_DELAY_MS: '2000',
  UPSTREAM_REQUEST_TIMEOUT_MS: '800',
  UPSTREAM_BUDGET_MS: '8000',
};

export interface HostProcess {
  hostUrl: string;
  host: StartedProcess;
  /** POST an event to /api/referral-updates. */
  post(body: unknown, init?: { headers?: Record<string, string>; query?: string }): Promise<Answer>;
  /** GET /api/health. */
  health(): Promise<Answer>;
  /** The app's own idempotency table in the shared Azurite (`AzureWebJobsStorage`), to inspect what it stored. */
  idempotencyTable: string;
}

export interface HostProcessOptions {
  /** Serve the app in this folder (e.g. an extracted deploy package, test/support/package.ts) instead of dist/. */
  appDir?: string;
}

/** The built app under the local host in a child process (plain Node), with `env` on top of an isolated environment. */
export async function startHostProcess(
  env: Record<string, string>,
  options: HostProcessOptions = {},
): Promise<HostProcess> {
  // A table of its own: the test run shares one Azurite (test/support/global-setup.ts). Processes that
  // play instances of one app share a table (and a queue) by passing the same IDEMPOTENCY_TABLE_NAME
  // (and ASYNC_QUEUE_NAME) in `env`.
  // A queue of its own too, or the workers of two suites would take each other's messages.
  const table = `t${randomUUID().replaceAll('-', '')}`;
  const queue = `q${randomUUID().replaceAll('-', '').slice(0, 24)}`;
  const host = startProcess(
    ['dist/dev/start.js', ...(options.appDir ? ['--app-dir', options.appDir] : [])],
    isolatedEnv({ PORT: '0', ...FAST_RETRY_ENV, IDEMPOTENCY_TABLE_NAME: table, ASYNC_QUEUE_NAME: queue, ...env }),
  );
  const [, hostUrl] = await host.waitFor(/(http:\/\/127\.0\.0\.1:\d+)\/api\//);
  await host.waitFor(/Press Ctrl\+C/);
  const url = hostUrl as string;
  const answer = async (response: Response): Promise<Answer> => {
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, body: text ? JSON.parse(text) : {} };
  };
  return {
    hostUrl: url,
    host,
    async post(body, init = {}) {
      const response = await fetch(`${url}/api/referral-updates${init.query ?? ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...init.headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return answer(response);
    },
    health: async () => answer(await fetch(`${url}/api/health`)),
    idempotencyTable: table,
  };
}

export interface Stack extends HostProcess {
  sandbox: PartnerCenterSandbox;
  identity: IdentityEmulator;
  stop(): Promise<void>;
}

/** Identity emulator + sandbox in this process, the app in a child process, in managed-identity mode. */
export async function startStack(env: Record<string, string> = {}, options: HostProcessOptions = {}): Promise<Stack> {
  const identity = await startIdentityEmulator();
  const sandbox = await startPartnerCenterSandbox({ acceptToken: (token) => identity.isIssued(token) });
  const app = await startHostProcess(
    {
      PARTNER_CENTER_BASE_URL: sandbox.url,
      IDENTITY_ENDPOINT: identity.endpoint,
      IDENTITY_HEADER: identity.header,
      ...env,
    },
    options,
  );
  return {
    ...app,
    sandbox,
    identity,
    async stop() {
      await app.host.stop();
      await sandbox.close();
      await identity.close();
    },
  };
}

/**
 * Starts a stack for the enclosing suite (before its first test, stopped after its last) and returns it.
 * With `resetSandbox`, the sandbox is back to its seed before each test.
 */
export function useStack(env: Record<string, string> = {}, options: { resetSandbox?: boolean } = {}): Stack {
  let started: Stack | undefined;
  beforeAll(async () => {
    started = await startStack(env);
  });
  afterAll(async () => {
    await started?.stop();
  });
  if (options.resetSandbox) {
    beforeEach(() => {
      started?.sandbox.reset();
    });
  }
  return new Proxy({} as Stack, {
    get(_target, key) {
      if (!started) throw new Error('the stack is used before beforeAll started it');
      return Reflect.get(started, key);
    },
  });
}

/** The sandbox's requests of one method. */
export function requestsOf(sandbox: PartnerCenterSandbox, method: string) {
  return sandbox.requests.filter((r) => r.method === method);
}
