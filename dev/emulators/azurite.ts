/**
 * Azurite (the Azure Storage emulator, npm package `azurite`): its Table and Queue services, each on a free
 * loopback port, in memory, telemetry off. What `npm start` and the tests use as the app's storage
 * (`AzureWebJobsStorage`): the idempotency store's tables and the queues of queue triggers.
 *
 * Two processes (`azurite-table`, `azurite-queue`) rather than the combined `azurite`, which would also start
 * a Blob service nothing here uses.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

/** Azurite's well-known development account (public, documented by Microsoft; works only against the emulator). */
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** How long a service may take to say it started. */
const START_TIMEOUT_MS = 20_000;
/** What a failed start-up quotes of the service's output: its last characters, never all of it. */
const OUTPUT_TAIL_CHARS = 4_096;

export interface RunningAzurite {
  /** For `AzureWebJobsStorage`: the Table and Queue endpoints. */
  connectionString: string;
  /** The Table service's port. */
  port: number;
  queuePort: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

type Service = 'table' | 'queue';

function serviceBin(service: Service): string {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve('azurite/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin: Record<string, string> };
  return join(dirname(manifestPath), manifest.bin[`azurite-${service}`] ?? `dist/src/${service}/main.js`);
}

interface RunningService {
  child: ChildProcess;
  exited: Promise<void>;
}

/** Azurite's line saying a service listens. */
const STARTED_LINE = /successfully (started|listens|listening)/i;

/** What {@link awaitStarted} reads: a child process, or anything with its output streams and `exit` event. */
export interface StartingProcess extends EventEmitter {
  stdout: Readable | null;
  stderr: Readable | null;
}

export interface AwaitStartedOptions {
  timeoutMs?: number;
  /** Whether a line of output says the service started (Azurite's "successfully listens" by default). */
  isStarted?: (line: string) => boolean;
}

/**
 * Resolves once the process says it started (a line of its output, stdout or stderr); rejects when it exits or
 * `timeoutMs` passes first, quoting the end of its output. Until then its output is read line by line, each line
 * looked at once (never the whole output again per chunk), keeping only a bounded tail for the error message;
 * afterwards the listeners are gone and the output flows on unread (a full pipe would block the process).
 */
export async function awaitStarted(
  child: StartingProcess,
  name: string,
  { timeoutMs = START_TIMEOUT_MS, isStarted = (line) => STARTED_LINE.test(line) }: AwaitStartedOptions = {},
): Promise<void> {
  let tail = '';
  await new Promise<void>((resolve, reject) => {
    let partial = '';
    const onData = (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = (lines.pop() ?? '').slice(-OUTPUT_TAIL_CHARS);
      for (const line of lines) {
        tail = `${tail}${line}\n`.slice(-OUTPUT_TAIL_CHARS);
        if (isStarted(line)) return finish();
      }
    };
    const onExit = (code: number | null) => finish(new Error(`${name} exited (${code}) before starting:\n${tail}`));
    const timer = setTimeout(
      () => finish(new Error(`${name} did not start within ${timeoutMs / 1000} s:\n${tail}`)),
      timeoutMs,
    );
    const finish = (error?: Error) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
  // Started: keep the pipes flowing, without looking at them.
  child.stdout?.resume();
  child.stderr?.resume();
}

/** Starts one service and resolves once it says it listens ({@link awaitStarted}). */
async function startService(service: Service, port: number): Promise<RunningService> {
  const child = spawn(
    process.execPath,
    [
      serviceBin(service),
      '--inMemoryPersistence',
      '--disableTelemetry',
      '--skipApiVersionCheck',
      '--loose',
      '--silent',
      `--${service}Host`,
      '127.0.0.1',
      `--${service}Port`,
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await awaitStarted(child, `Azurite's ${service[0]?.toUpperCase()}${service.slice(1)} service`);
  } catch (error) {
    if (child.exitCode === null) child.kill('SIGTERM');
    throw error;
  }
  return { child, exited };
}

async function stopService({ child, exited }: RunningService): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await exited;
}

export async function startAzurite(): Promise<RunningAzurite> {
  const port = await freePort();
  let queuePort = await freePort();
  while (queuePort === port) queuePort = await freePort();
  const started = await Promise.allSettled([startService('table', port), startService('queue', queuePort)]);
  const running = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(running.map(stopService));
    throw failed.reason;
  }
  return {
    port,
    queuePort,
    // The Table endpoint first: tests point the idempotency store elsewhere by rewriting the first loopback port.
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};` +
      `TableEndpoint=http://127.0.0.1:${port}/${DEV_ACCOUNT};QueueEndpoint=http://127.0.0.1:${queuePort}/${DEV_ACCOUNT};`,
    async stop() {
      await Promise.all(running.map(stopService));
    },
  };
}
