/**
 * Start-up and telemetry figures of the deploy package (docs/performance-analysis.md#start-up-and-telemetry), each a
 * ratio against a baseline measured in the same run, interleaved (dev/bench/cold-start.ts):
 * 1. start → first answer with telemetry configured, against telemetry off: a fresh process starts the local
 *    host on the package, posts one event and exits when it is answered;
 * 2. CPU per event of the app's process with telemetry on (exporting to the loopback ingestion emulator),
 *    against off: events sent from this process, the app process's own CPU time read before and after;
 * 3. importing every entry point of the package, against an empty Node process.
 * Loopback only: the sandbox, the identity and ingestion emulators run in this process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildPackage } from '../../tools/package.js';
import { startIdentityEmulator } from '../emulators/identity.js';
import { startIngestionEmulator } from '../emulators/ingestion.js';
import { testTlsFile } from '../emulators/test-tls.js';
import { SEED_IDS } from '../sandbox/seed.js';
import { startPartnerCenterSandbox } from '../sandbox/server.js';
import {
  cleanEnv,
  importAll,
  LOOPBACK_GUARD,
  median,
  medianTimes,
  PRELUDE,
  ratio,
  TELEMETRY_ENV,
} from './cold-start.js';
import { type BenchRow, benchSetting } from './rows.js';

const HOST = new URL('../host/host.js', import.meta.url).href;

export interface StartupOptions {
  /** The packaged app folder; built into out/bench/startup-package/ when absent. */
  packagedAppDir?: string;
  /** Fresh processes per series (default: BENCH_COLD_RUNS or 9). */
  runs?: number;
  /** Events per CPU sample (default 300), after 30 warm-up events. */
  events?: number;
}

/** The local host on `appDir`, port 0; prints its URL, then a CPU reading on each line read from stdin. */
const hostScript = (appDir: string) => `
const { startHost } = await import(${JSON.stringify(HOST)});
const host = await startHost({ appDir: ${JSON.stringify(appDir)}, port: 0, log: () => {} });
console.log('URL=' + host.url + ';');
process.stdin.setEncoding('utf8');
process.stdin.on('data', () => { const { user, system } = process.cpuUsage(); console.log('CPU=' + (user + system) + ';'); });
`;

/** Start the host, post one event that is answered without Partner Center (400), exit when answered. */
const firstAnswerScript = (appDir: string) => `
const { startHost } = await import(${JSON.stringify(HOST)});
const host = await startHost({ appDir: ${JSON.stringify(appDir)}, port: 0, log: () => {} });
const answer = await fetch(host.url + '/api/referral-updates', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
await answer.text();
if (answer.status !== 400) { console.error('first answer: ' + answer.status); process.exit(1); }
process.exit(0);
`;

export async function benchStartup(options: StartupOptions = {}): Promise<BenchRow[]> {
  const runs = options.runs ?? benchSetting('BENCH_COLD_RUNS', 9);
  const appDir =
    options.packagedAppDir ??
    (await buildPackage({ outDir: fileURLToPath(new URL('../../../out/bench/startup-package', import.meta.url)) }))
      .appDir;

  const first = medianTimes(
    {
      off: { script: firstAnswerScript(appDir), env: cleanEnv({}) },
      configured: { script: firstAnswerScript(appDir), env: cleanEnv({ ...TELEMETRY_ENV }) },
    },
    runs,
  );
  const imports = medianTimes({ empty: { script: '' }, pkg: { script: importAll(appDir) } }, runs);
  const cpu = await cpuPerEvent(appDir, Math.max(3, Math.ceil(runs / 3)), options.events ?? 300);

  const row = (figure: string, baseline: string, value: number, base: number, goal: number): BenchRow => ({
    figure,
    baseline: `${baseline}: ${base.toFixed(1)} ${figure.includes('CPU') ? 'µs' : 'ms'}`,
    value: ratio(value, base),
    goal: `≤ ${goal.toFixed(2)}×`,
    met: value / base <= goal,
  });
  return [
    row(
      'telemetry configured: start → first answer vs telemetry off (package)',
      'telemetry off',
      first.configured,
      first.off,
      1.2,
    ),
    row('telemetry configured: CPU per event vs off', 'telemetry off, CPU per event', cpu.on, cpu.off, 1.15),
    row('deploy package import vs an empty Node process', 'empty Node process', imports.pkg, imports.empty, 2.0),
  ];
}

/** Median CPU time (µs) per event of the app's process, telemetry on and off, `samples` processes each, interleaved. */
async function cpuPerEvent(appDir: string, samples: number, events: number): Promise<{ on: number; off: number }> {
  const identity = await startIdentityEmulator();
  const sandbox = await startPartnerCenterSandbox({ acceptToken: (t) => identity.isIssued(t) });
  const ingestion = await startIngestionEmulator();
  const base = {
    PARTNER_CENTER_BASE_URL: sandbox.url,
    IDENTITY_ENDPOINT: identity.endpoint,
    IDENTITY_HEADER: identity.header,
  };
  const telemetry = {
    ...TELEMETRY_ENV,
    APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
    NODE_EXTRA_CA_CERTS: testTlsFile('test-ca.pem'),
    OTEL_BLRP_SCHEDULE_DELAY: '200',
    OTEL_BSP_SCHEDULE_DELAY: '200',
  };
  const results = { on: [] as number[], off: [] as number[] };
  try {
    for (let i = 0; i < samples; i++) {
      results.off.push(await cpuSample(appDir, cleanEnv(base), events));
      results.on.push(await cpuSample(appDir, cleanEnv({ ...base, ...telemetry }), events, true));
    }
  } finally {
    await ingestion.close();
    await sandbox.close();
    await identity.close();
  }
  return { on: median(results.on), off: median(results.off) };
}

async function cpuSample(appDir: string, env: Record<string, string>, events: number, telemetry = false) {
  const child = spawn(
    process.execPath,
    ['--import', pathToFileURL(LOOPBACK_GUARD).href, '--input-type=module', '-e', PRELUDE + hostScript(appDir)],
    { env, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const lines = lineReader(child);
  try {
    const url = (await lines.next(/URL=(\S+);/))[1] ?? '';
    const post = async (i: number) => {
      const answer = await fetch(`${url}/api/referral-updates`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ referralId: SEED_IDS.activeAccepted, dealValue: i, notes: `bench ${i}` }),
      });
      await answer.text();
      if (answer.status !== 200) throw new Error(`CPU per event: an event answered ${answer.status}`);
    };
    for (let i = 0; i < 30; i++) await post(i);
    if (telemetry) await telemetryOn(url);
    const cpu = async () => {
      child.stdin?.write('\n');
      return Number((await lines.next(/CPU=(\d+);/))[1]);
    };
    const before = await cpu();
    for (let i = 0; i < events; i++) await post(1000 + i);
    // Let the exports of these events happen (OTEL_BLRP_SCHEDULE_DELAY 200 ms), in both series alike.
    await new Promise((resolve) => setTimeout(resolve, 600));
    return ((await cpu()) - before) / events;
  } finally {
    child.kill();
    await once(child, 'exit');
  }
}

async function telemetryOn(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const health = (await (await fetch(`${url}/api/health`)).json()) as { telemetry?: { status?: string } };
    if (health.telemetry?.status === 'on') return;
    if (health.telemetry?.status === 'failed') throw new Error('CPU per event: telemetry failed to start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('CPU per event: telemetry did not start');
}

/** Lines of a child's stdout, matched in order; stderr kept for the error message. */
function lineReader(child: ChildProcess) {
  let out = '';
  let err = '';
  let offset = 0;
  const waiters: Array<() => void> = [];
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  return {
    async next(pattern: RegExp): Promise<RegExpMatchArray> {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const match = pattern.exec(out.slice(offset));
        if (match) {
          offset += (match.index ?? 0) + match[0].length;
          return match;
        }
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`bench: the app process gave no ${pattern}: ${err.slice(-2000)}`);
        }
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
  };
}
