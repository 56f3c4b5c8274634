/**
 * The local host's own cost per request (dev/host/host.ts, what `npm start` and the tests run the app on), so that
 * it does not dominate the figures measured through it (docs/performance-analysis.md#local-host). In a child
 * process of its own, with the loopback sandbox and the identity emulator in it, four series of the same
 * sequential events (no `webhook-id`, IDEMPOTENCY_STORE=memory), rounds interleaved:
 *
 * - host: POST /api/referral-updates through the local host (the built app in dist/, loaded as the worker does),
 *   with its log on stdout as under `npm start` (a pipe the parent drains, as the tests read it);
 * - in process: the same use case, `processEvent` called directly (in-process.ts), no HTTP in front of it;
 * - handler: the app's registered function called in process as the Functions worker calls it, with the
 *   `HttpRequest` and `InvocationContext` of @azure/functions (a cost Azure's worker has too), no HTTP;
 * - bare: the same POST to a bare `node:http` server that reads the body and answers a fixed JSON.
 *
 * Each figure is the CPU time of that process per request (the client, the host, the app and the sandbox all run
 * in it, one request at a time), which other processes on a shared machine disturb less than wall time; requests
 * of the four series alternate one by one, and the figure is the median of the rounds. The row is host ÷ in
 * process: the goal, at most 2.0×, keeps what the host adds (host − in process) below what the app itself costs
 * in process (the use case, its client and the sandbox it calls), so that the host's part is less than half of any
 * figure measured through it: it does not dominate them (issue #13, item 6). The value splits what it adds into the
 * library's conversion (handler − in process, which Azure's worker pays too) and the local host's own part
 * (host − handler), given against the bare round trip, the part of it no host can avoid. One client (an undici Pool, one connection,
 * keep-alive) sends to the host and to the bare server.
 *
 * Runnable on its own: `npm run build && node dist/dev/bench/host-overhead.js` prints the rows.
 * Environment: BENCH_HOST_REQUESTS (requests per series per round, 100), BENCH_HOST_RUNS (rounds, 10), and
 * BENCH_HOST_CPU_PROF (a folder: the child runs with `--cpu-prof` and writes its profile there).
 */
import { fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { parseConfig } from '../../shared/config.js';
import { createMemoryIdempotencyStore } from '../../shared/idempotency/store.js';
import { startIdentityEmulator } from '../emulators/identity.js';
import { startHost } from '../host/host.js';
import { SEED_IDS } from '../sandbox/seed.js';
import { startPartnerCenterSandbox } from '../sandbox/server.js';
import { cleanEnv, LOOPBACK_GUARD, median } from './cold-start.js';
import { inProcessApp } from './in-process.js';
import { type BenchRow, benchSetting } from './rows.js';

/** Through the host at most this many times the app in process: the host's own part less than half of the whole. */
const GOAL = 2.0;

interface HostOverheadFigures {
  requests: number;
  runs: number;
  /** Median over the rounds of the CPU time per request, µs. */
  bareUs: number;
  inProcessUs: number;
  handlerUs: number;
  hostUs: number;
}

/** In the child: the measurement itself. */
async function measure(): Promise<HostOverheadFigures> {
  const requests = benchSetting('BENCH_HOST_REQUESTS', 100);
  const runs = benchSetting('BENCH_HOST_RUNS', 10);
  const identity = await startIdentityEmulator();
  // Any token: the host's app gets one from the identity emulator, the in-process series has a fixed one.
  const sandbox = await startPartnerCenterSandbox();
  // The app the host loads reads its settings from the environment, as in Azure.
  process.env.PARTNER_CENTER_BASE_URL = sandbox.url;
  process.env.IDENTITY_ENDPOINT = identity.endpoint;
  process.env.IDENTITY_HEADER = identity.header;
  const parsed = parseConfig(process.env);
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  const appDir = fileURLToPath(new URL('../../../', import.meta.url));
  // The host's own log, as under `npm start`: its lines go to stdout, a pipe the parent reads (as the tests do).
  const host = await startHost({ appDir, port: 0 });
  const direct = inProcessApp(parsed.config, createMemoryIdempotencyStore());
  const bareServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"outcome":"updated"}');
    });
  });
  await new Promise<void>((resolve) => bareServer.listen(0, '127.0.0.1', resolve));
  const bareUrl = `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}`;
  const hostPool = new Pool(host.url, { connections: 1 });
  const barePool = new Pool(bareUrl, { connections: 1 });

  const template = sandbox.getReferral(SEED_IDS.activeAccepted);
  if (!template) throw new Error('the sandbox has no activeAccepted referral');
  for (const id of ['host-overhead-host', 'host-overhead-handler', 'host-overhead-direct']) {
    sandbox.putReferral({ ...structuredClone(template), id });
  }
  const event = (referralId: string, n: number) => ({ referralId, dealValue: n, notes: `bench ${n}` });
  let sequence = 0;

  async function post(pool: Pool, path: string, referralId: string): Promise<void> {
    const answer = await pool.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event(referralId, ++sequence)),
    });
    await answer.body.text();
    if (answer.statusCode !== 200) throw new Error(`${path} answered ${answer.statusCode}`);
  }
  // The function as the worker invokes it, from the module instance the app registered with (the host's stub).
  const azf = (await import('@azure/functions')).default;
  const handler = host.app.functions.find((fn) => fn.name === 'referral-updates')?.handler;
  if (!handler) throw new Error('the app registered no referral-updates function');
  async function invoke(referralId: string): Promise<void> {
    const request = new azf.HttpRequest({
      method: 'POST',
      url: `${host.url}/api/referral-updates`,
      headers: { 'content-type': 'application/json' },
      params: {},
      body: { bytes: Buffer.from(JSON.stringify(event(referralId, ++sequence))) },
    });
    const context = new azf.InvocationContext({
      functionName: 'referral-updates',
      invocationId: randomUUID(),
      logHandler: () => {},
      traceContext: { traceParent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01` },
    });
    const answer = (await handler?.(request, context)) as { status?: number };
    if (answer.status !== 200) throw new Error(`the handler answered ${answer.status}`);
  }
  const series = {
    bare: () => post(barePool, '/api/referral-updates', 'host-overhead-bare'),
    inProcess: () => direct.postOk(event('host-overhead-direct', ++sequence)),
    handler: () => invoke('host-overhead-handler'),
    host: () => post(hostPool, '/api/referral-updates', 'host-overhead-host'),
  };
  type Series = keyof typeof series;
  const names = Object.keys(series) as Series[];

  /**
   * One round: `count` requests of each series, interleaved request by request (so that a change in the machine's
   * load falls on every series alike); the CPU µs of this process per request of each series.
   */
  async function round(count: number): Promise<Record<Series, number>> {
    const cpu = Object.fromEntries(names.map((name) => [name, 0])) as Record<Series, number>;
    for (let i = 0; i < count; i++) {
      for (const name of names) {
        const started = process.cpuUsage();
        await series[name]();
        const { user, system } = process.cpuUsage(started);
        cpu[name] += user + system;
      }
    }
    for (const name of names) cpu[name] /= count;
    return cpu;
  }

  try {
    await round(Math.min(50, requests)); // warm-up: connections, lazy imports, the token, JIT
    sandbox.clearRequests();
    const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Series, number[]>;
    for (let r = 0; r < runs; r++) {
      const cpu = await round(requests);
      for (const name of names) samples[name].push(cpu[name]);
      sandbox.clearRequests();
    }
    return {
      requests,
      runs,
      bareUs: median(samples.bare),
      inProcessUs: median(samples.inProcess),
      handlerUs: median(samples.handler),
      hostUs: median(samples.host),
    };
  } finally {
    await hostPool.close();
    await barePool.close();
    await new Promise<void>((resolve) => bareServer.close(() => resolve()));
    await host.close();
    await direct.client.close();
    await sandbox.close();
    await identity.close();
  }
}

/** In the parent: runs {@link measure} in a fresh child process and turns its figures into the row. */
export async function benchHostOverhead(): Promise<BenchRow[]> {
  const profileDir = process.env.BENCH_HOST_CPU_PROF;
  const childEnv = cleanEnv({});
  // No storage: the queue functions are not started (the host says so once, on stderr), nothing polls.
  delete childEnv.AzureWebJobsStorage;
  const child = fork(fileURLToPath(import.meta.url), ['--child'], {
    env: childEnv,
    execArgv: [`--import=${LOOPBACK_GUARD}`, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  // The host's log is read and dropped; the end of stderr is kept for a failure's message.
  child.stdout?.resume();
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errors = `${errors}${chunk.toString('utf8')}`.slice(-4096);
  });
  const figures = await new Promise<HostOverheadFigures>((resolve, reject) => {
    child.once('message', (message) => resolve(message as HostOverheadFigures));
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`the host overhead bench's child process exited with ${code}: ${errors.trim()}`)),
    );
  });
  const library = figures.handlerUs - figures.inProcessUs;
  const own = figures.hostUs - figures.handlerUs;
  const ratio = figures.hostUs / figures.inProcessUs;
  const us = (value: number) => `${value.toFixed(0)} µs`;
  return [
    {
      figure: `local host: CPU per request through the host vs the same use case in process (POST /api/referral-updates, sequential, ${figures.runs} × ${figures.requests} each)`,
      baseline: `${us(figures.inProcessUs)} (processEvent in process, no HTTP)`,
      value: `${us(figures.hostUs)} (${ratio.toFixed(2)}×): @azure/functions' HttpRequest and context (the handler called as the worker calls it) +${us(library)}, the local host itself (HTTP, routing, log line, answer) +${us(own)} = ${(own / figures.bareUs).toFixed(2)}× a bare node:http round trip of ${us(figures.bareUs)}`,
      ratio: `${ratio.toFixed(2)}×`,
      goal: `≤ ${GOAL.toFixed(1)}× (the host's own part under half of what is measured through it)`,
      met: ratio <= GOAL,
    },
  ];
}

if (process.argv[2] === '--child' && process.send) {
  const send = process.send.bind(process);
  measure().then(
    (figures) => send(figures, () => process.exit(0)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Run on its own: the rows, as `npm run bench` would report them.
  for (const row of await benchHostOverhead()) process.stdout.write(`${JSON.stringify(row, null, 2)}\n`);
}
