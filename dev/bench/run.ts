/**
 * `npm run bench`: the performance figures quoted in docs/performance.md, each as a ratio against a
 * baseline measured in the same run on the same machine (absolute times vary from machine to machine).
 *
 * 0. Goals (issue 13): one row per figure, its baseline from this run, its goal and whether it is met, from
 *    the row providers of {@link GOALS} (burst.ts, throttle.ts, throughput.ts, startup.ts, memory.ts,
 *    host-overhead.ts), run one
 *    after another so that none slows another.
 * 1. Cold start: importing the built function entry points in a fresh Node process, against an empty
 *    Node process, and against the same import with @azure/identity and undici loaded eagerly (what
 *    the lazy loading saves).
 * 2. Per event: the update use case (validation, cached token, rules, merge, GET + conditional PUT)
 *    against the bare HTTP round trips it cannot avoid (the same GET + PUT with undici and a fixed
 *    token), both against the loopback sandbox.
 * 3. Deploy package (tools/package.ts): its zip size, and the cold start of the packaged app against the
 *    unbundled build, with telemetry off and configured (dev/bench/cold-start.ts).
 * Loopback only: the sandbox, the identity emulator and Azurite are started here.
 *
 * The report goes to out/bench/report.md (git-ignored) and the package it measures to out/bench/package/, so a
 * run never touches a tracked file or the deploy package of `npm run package` (out/package/). `--write-docs`
 * also writes it to docs/performance.md, on purpose, to update the figures the docs quote.
 *
 * Every BENCH_* environment variable scales a part down (the report lists those set): BENCH_COLD_RUNS,
 * BENCH_EVENTS here; the others in the module they scale.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { createManagedIdentityTokenProvider } from '../../shared/auth/managed-identity.js';
import { parseConfig } from '../../shared/config.js';
import { parseUpdateEvent } from '../../shared/contract/update-event.js';
import { createPartnerCenterClient } from '../../shared/partner-center/client.js';
import { updateReferral } from '../../shared/use-cases/update-referral.js';
import { buildPackage, formatBytes, packageSizes, ZIP_BUDGET_BYTES } from '../../tools/package.js';
import { startIdentityEmulator } from '../emulators/identity.js';
import { SEED_IDS } from '../sandbox/seed.js';
import { startPartnerCenterSandbox } from '../sandbox/server.js';
import { benchBurst } from './burst.js';
import { describeColdStarts, importAll, measureColdStarts, median, medianTimes, ratio } from './cold-start.js';
import { benchHostOverhead } from './host-overhead.js';
import { bareUpdate } from './in-process.js';
import { benchMemory } from './memory.js';
import { type BenchRow, benchSetting } from './rows.js';
import { benchStartup } from './startup.js';
import { benchThrottle } from './throttle.js';
import { benchThroughput } from './throughput.js';

const appDir = fileURLToPath(new URL('../../../', import.meta.url));
const { values: flags } = parseArgs({ options: { 'write-docs': { type: 'boolean', default: false } } });
const REPORT = new URL('../../../out/bench/report.md', import.meta.url);
const DOCS = new URL('../../../docs/performance.md', import.meta.url);
const COLD_RUNS = benchSetting('BENCH_COLD_RUNS', 9);
const EVENTS = benchSetting('BENCH_EVENTS', 400);

const ms = (value: number) => `${value.toFixed(2)} ms`;

/** The built app's entry points, against an empty process and against the same with the heavy SDKs eager. */
function coldStart() {
  const entry = importAll(appDir);
  return medianTimes(
    {
      baseline: { script: '' },
      app: { script: entry },
      eager: { script: `await import('@azure/identity'); await import('undici'); ${entry}` },
    },
    COLD_RUNS,
  );
}

async function perEvent() {
  const identity = await startIdentityEmulator();
  process.env.IDENTITY_ENDPOINT = identity.endpoint;
  process.env.IDENTITY_HEADER = identity.header;
  const sandbox = await startPartnerCenterSandbox({ acceptToken: (t) => identity.isIssued(t) });
  const parsed = parseConfig({ PARTNER_CENTER_BASE_URL: sandbox.url, IDEMPOTENCY_STORE: 'memory' });
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  const tokens = createManagedIdentityTokenProvider({ scope: parsed.config.partnerCenter.scope, clientId: undefined });
  const client = createPartnerCenterClient(parsed.config.partnerCenter, parsed.config.retry, tokens);
  const deps = { client, retry: parsed.config.retry };
  const id = SEED_IDS.activeAccepted;
  const token = await tokens.getToken();
  const pool = new Pool(sandbox.url, { connections: 4 });
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json', 'content-type': 'application/json' };

  const bare = (i: number) => bareUpdate(pool, headers, id, i);
  async function adapter(i: number) {
    const event = parseUpdateEvent({ referralId: id, dealValue: i, notes: `bench ${i}` });
    const result = await updateReferral(event, deps, { correlationId: '00000000-0000-4000-8000-00000000bench' });
    if (result.outcome !== 'updated') throw new Error(`adapter answered ${result.outcome}`);
  }

  const samples = { bare: [] as number[], adapter: [] as number[] };
  for (let i = 0; i < 20; i++) {
    await bare(1_000_000 + i);
    await adapter(2_000_000 + i);
  }
  for (let i = 0; i < EVENTS; i++) {
    // Interleaved, so drift in the machine's load affects both series alike.
    let started = performance.now();
    await bare(i * 2);
    samples.bare.push(performance.now() - started);
    started = performance.now();
    await adapter(i * 2 + 1);
    samples.adapter.push(performance.now() - started);
  }
  const tokenRequests = identity.issued.length;
  await pool.close();
  await client.close();
  await sandbox.close();
  await identity.close();
  return { bare: median(samples.bare), adapter: median(samples.adapter), tokenRequests };
}

async function deployPackage() {
  const built = await buildPackage({ outDir: fileURLToPath(new URL('../../../out/bench/package', import.meta.url)) });
  const figures = await measureColdStarts({ packagedAppDir: built.appDir, runs: COLD_RUNS, sourceMaps: true });
  return { built, figures };
}

/** A module's rows of the Goals table (LAYOUT places them in the issue's order). */
interface RowProvider {
  name: string;
  rows: () => Promise<BenchRow[]>;
}

/** The Goals table's providers, in the order they run. */
const GOALS: RowProvider[] = [
  { name: 'burst', rows: benchBurst },
  { name: 'throttle', rows: benchThrottle },
  { name: 'throughput', rows: benchThroughput },
  { name: 'startup', rows: () => benchStartup() },
  { name: 'memory', rows: benchMemory },
  { name: 'host-overhead', rows: benchHostOverhead },
];

/** The issue's order of the rows: a provider's rows (all, or the one at `index`). */
const LAYOUT: Array<{ name: string; index?: number }> = [
  { name: 'burst' },
  { name: 'throttle', index: 1 },
  { name: 'throughput' },
  { name: 'startup' },
  { name: 'memory' },
  { name: 'throttle', index: 0 },
  { name: 'host-overhead' },
];

/** Every provider's rows; a provider that fails gives one row saying so, and the others still run. */
async function goals(): Promise<BenchRow[]> {
  const byName = new Map<string, BenchRow[]>();
  for (const provider of GOALS) {
    const started = performance.now();
    try {
      byName.set(provider.name, await provider.rows());
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      byName.set(provider.name, [
        {
          figure: `${provider.name} (dev/bench/${provider.name}.ts)`,
          baseline: '—',
          value: `failed: ${message}`,
          goal: '—',
          met: false,
        },
      ]);
    }
    process.stderr.write(`bench: ${provider.name} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
  const placed = new Set<BenchRow>();
  const ordered = LAYOUT.flatMap(({ name, index }) => {
    const rows = byName.get(name) ?? [];
    return index === undefined ? rows : rows.slice(index, index + 1);
  });
  for (const row of ordered) placed.add(row);
  // Rows the layout does not name (a provider with more rows than expected) come last.
  return [...placed, ...[...byName.values()].flat().filter((row) => !placed.has(row))];
}

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function goalsTable(rows: readonly BenchRow[]): string {
  const lines = rows.map(
    (row) =>
      `| ${cell(row.figure)} | ${cell(row.baseline)} | ${cell(row.value)} | ${cell(row.goal)} | ${row.met ? 'yes' : '**no**'} |`,
  );
  return ['| figure | baseline (same run) | value | goal | met |', '|---|---|---|---|---|', ...lines].join('\n');
}

const command = `npm run bench${flags['write-docs'] ? ' -- --write-docs' : ''}`;
const knobs = Object.entries(process.env)
  .filter(([name]) => name.startsWith('BENCH_'))
  .map(([name, value]) => `${name}=${value}`)
  .sort();
const cpu = cpus();
const machine = `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, ${platform()} ${release()}`;

const goalRows = await goals();
const cold = coldStart();
const event = await perEvent();
const pkg = await deployPackage();
const { startupBytes, lazyBytes, telemetryBytes } = packageSizes(pkg.built);
const report = `# Performance

Measured by \`${knobs.length > 0 ? `${knobs.join(' ')} ` : ''}${command}\` (dev/bench/run.ts) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version},
on ${machine}; ${COLD_RUNS} cold starts and ${EVENTS} events per series. Ratios are against a baseline measured in the same run;
absolute times depend on the machine and are given only to read the ratios.

## Goals

Each figure of issue 13 against its baseline, measured in this run (the modules of dev/bench/ say how).

${goalsTable(goalRows)}

What limits the goals that are not met, and the decisions behind these figures (the module compile cache,
telemetry at start-up): [performance-analysis.md](performance-analysis.md).

Throughput: each of 16 workers sends its events one after another to a referral of its own, so group commit
does not change the figure. Memory: in a child process of its own, the events held by a delay on every call
to the sandbox, with the default UPSTREAM_CONNECTIONS (the events beyond it wait for a connection).

## Cold start (fresh Node process, median)

| what | time | vs empty Node process |
|---|---|---|
| empty Node process (baseline) | ${ms(cold.baseline)} | 1.00× |
| import every function entry point | ${ms(cold.app)} | ${ratio(cold.app, cold.baseline)} |
| same, with @azure/identity and undici imported eagerly | ${ms(cold.eager)} | ${ratio(cold.eager, cold.baseline)} |

Lazy loading makes the entry points ${ratio(cold.eager, cold.app)} cheaper to import than eager loading would;
the first event pays for the two modules instead.

## Per event (loopback sandbox, sequential, median)

| what | time | vs bare round trips |
|---|---|---|
| bare GET + conditional PUT with undici, fixed token (baseline) | ${ms(event.bare)} | 1.00× |
| the adapter's update use case (validate, token, rules, merge, GET + PUT) | ${ms(event.adapter)} | ${ratio(event.adapter, event.bare)} |

Token requests to the identity endpoint for all ${EVENTS + 20} adapter events: ${event.tokenRequests}.

## Deploy package (\`npm run package\`)

Zip: **${formatBytes(pkg.built.zipBytes ?? 0)}** (budget ${formatBytes(ZIP_BUDGET_BYTES)}), ${pkg.built.files.length} files. JavaScript loaded with the
entry points: ${formatBytes(startupBytes)}; loaded on demand: ${formatBytes(lazyBytes)}, of which Application Insights and
OpenTelemetry ${formatBytes(telemetryBytes)} (only when \`APPLICATIONINSIGHTS_CONNECTION_STRING\` is set). Left out of the bundle:
\`@azure/functions-core\` (the worker provides it); the package has no node_modules.

Cold start: a fresh Node process imports every entry point (\`@azure/functions-core\` resolving to the
local stub) and runs until it exits by itself, so telemetry started in the background at load counts;
median of ${pkg.figures.runs}, against an empty process with the same preloads. Telemetry "configured" means a
connection string whose ingestion endpoint is 127.0.0.1:9, statsbeat off (nothing leaves loopback).

${describeColdStarts(pkg.figures)}

How it is built (tools/package.ts): esbuild, ESM with code splitting, so every dynamic \`import()\` (the Azure
SDK, undici, Application Insights) stays a chunk loaded on first use. Not minified: minifying saved no
measurable import time, and unminified bundles keep function names and readable lines in stack traces.
Source maps ship only for the files holding the app's own code (\`--enable-source-maps\` maps their frames
to \`functions/\` and \`shared/\`; the \`--enable-source-maps\` rows above are its cost). Two things needed handling to bundle everything:
the app never \`import()\`s a package, only a module of its own that imports the package statically
(\`shared/partner-center/undici.ts\`), because esbuild's chunk for \`import('undici')\` (CommonJS) would export
only \`default\`, so \`{ Pool }\` would be undefined; and
CommonJS code reading \`__dirname\` (the Application Insights JSON config lookup) gets the chunk's folder.
`;
mkdirSync(new URL('.', REPORT), { recursive: true });
writeFileSync(REPORT, report);
process.stdout.write(`${report}\nWritten to out/bench/report.md\n`);
if (flags['write-docs']) {
  writeFileSync(DOCS, report);
  process.stdout.write('Written to docs/performance.md (--write-docs): review and commit it.\n');
} else {
  process.stdout.write('docs/performance.md is unchanged: npm run bench -- --write-docs updates it.\n');
}
