/**
 * Cold start as the worker pays it: a fresh Node process imports every entry point of an app folder
 * (package.json `main`) with `@azure/functions-core` resolving to the local stub, then runs until it
 * exits by itself, so work the app starts in the background at load (Application Insights) counts too.
 * Compared with an empty process that has the same preloads, measured in the same run, interleaved.
 *
 * Everything stays on loopback: every process runs with the tests' loopback guard, and with telemetry
 * configured the ingestion endpoint is 127.0.0.1:9, statsbeat is off, WEBSITE_SITE_NAME is set (no
 * metadata-service probe) and HTTPS_PROXY is a closed loopback port.
 */
import { spawnSync } from 'node:child_process';
import { globSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../../tools/package.js';
import { LOOPBACK_TELEMETRY_SETTINGS } from '../emulators/ingestion.js';
import { withoutServiceSettings } from '../support/isolated-env.js';

/** What "telemetry configured" means in these measurements. */
export const TELEMETRY_ENV: Readonly<Record<string, string>> = {
  APPLICATIONINSIGHTS_CONNECTION_STRING:
    'InstrumentationKey=00000000-0000-4000-8000-000000000000;IngestionEndpoint=https://127.0.0.1:9/',
  ...LOOPBACK_TELEMETRY_SETTINGS,
  // The exporter's remote-configuration poll (5-15 s after start, so normally after the process ended)
  // would go to a closed loopback port.
  HTTPS_PROXY: 'http://127.0.0.1:9',
  NO_PROXY: '127.0.0.1,localhost,::1',
};

const STUB = join(REPO_ROOT, 'dist', 'dev', 'host', 'functions-core-stub.cjs');
export const LOOPBACK_GUARD = join(REPO_ROOT, 'dev', 'support', 'loopback-guard.mjs');
/** Installed before anything loads, in every measured process (the baseline too). */
export const PRELUDE = `
import Module from 'node:module';
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === '@azure/functions-core' ? ${JSON.stringify(STUB)} : resolveFilename.call(this, request, ...rest);
};
setTimeout(() => { console.error('still running after 30 s'); process.exit(2); }, 30_000).unref();
`;

export interface ColdStartCase {
  app: 'unbundled' | 'packaged';
  telemetry: boolean;
  /** Run with `--enable-source-maps` (packaged only). */
  sourceMaps: boolean;
  medianMs: number;
}

export interface ColdStartFigures {
  runs: number;
  baselineMs: number;
  cases: ColdStartCase[];
}

/** The entry point files of an app folder, as the worker finds them. */
export function entryFiles(appDir: string): string[] {
  const { main } = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as { main: string };
  const files = globSync(main, { cwd: appDir }).sort();
  if (files.length === 0) throw new Error(`${appDir}: "${main}" matches no file`);
  return files.map((file) => join(appDir, file));
}

/** The environment of a measured process: nothing that points at a real service. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  return { ...withoutServiceSettings(), IDEMPOTENCY_STORE: 'memory', ...extra };
}

/** A measured process: a module script run after the PRELUDE, with its environment and Node flags. */
export interface ProcessSpec {
  script: string;
  /** Default: the parent's environment without service settings, IDEMPOTENCY_STORE=memory. */
  env?: Record<string, string>;
  flags?: string[];
}

export function timeProcess({ script, env = cleanEnv({}), flags = [] }: ProcessSpec): number {
  const started = performance.now();
  const result = spawnSync(
    process.execPath,
    [...flags, '--import', pathToFileURL(LOOPBACK_GUARD).href, '--input-type=module', '-e', PRELUDE + script],
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
  );
  const elapsed = performance.now() - started;
  if (result.status !== 0) {
    throw new Error(`cold start: the measured process exited with ${result.status}: ${result.stderr.slice(-2000)}`);
  }
  // A blocked connection, or telemetry that failed to start, would make the figure meaningless.
  if (/loopback guard|telemetry is off/.test(result.stderr))
    throw new Error(`cold start: ${result.stderr.slice(-2000)}`);
  return elapsed;
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

export const ratio = (value: number, baseline: number) => `${(value / baseline).toFixed(2)}×`;

/** `import()` of every entry point of an app folder, as a module script. */
export function importAll(appDir: string): string {
  return entryFiles(appDir)
    .map((file) => `await import(${JSON.stringify(pathToFileURL(file).href)});`)
    .join(' ');
}

/**
 * The median wall time of each process over `runs` fresh processes: one warm-up round (file system
 * caches), then interleaved rounds, so drift affects every series alike.
 */
export function medianTimes<K extends string>(specs: Record<K, ProcessSpec>, runs: number): Record<K, number> {
  const names = Object.keys(specs) as K[];
  const samples = new Map<K, number[]>(names.map((name) => [name, []]));
  for (const name of names) timeProcess(specs[name]);
  for (let i = 0; i < runs; i++) {
    for (const name of names) samples.get(name)?.push(timeProcess(specs[name]));
  }
  return Object.fromEntries(names.map((name) => [name, median(samples.get(name) ?? [])])) as Record<K, number>;
}

export interface ColdStartOptions {
  /** The packaged app folder (tools/package.ts `appDir`). */
  packagedAppDir: string;
  /** The unbundled build (default: the repository, dist/functions/*.js). */
  unbundledAppDir?: string;
  runs?: number;
  /** Also measure the package with `--enable-source-maps` (what mapped stack traces cost). */
  sourceMaps?: boolean;
}

export async function measureColdStarts(options: ColdStartOptions): Promise<ColdStartFigures> {
  const runs = options.runs ?? 9;
  const unbundledDir = options.unbundledAppDir ?? REPO_ROOT;
  const cases: Array<Omit<ColdStartCase, 'medianMs'>> = [];
  for (const telemetry of [false, true]) {
    cases.push({ app: 'unbundled', telemetry, sourceMaps: false }, { app: 'packaged', telemetry, sourceMaps: false });
    if (options.sourceMaps) cases.push({ app: 'packaged', telemetry, sourceMaps: true });
  }
  const specs: Record<string, ProcessSpec> = { baseline: { script: '' } };
  for (const [i, spec] of cases.entries()) {
    specs[i] = {
      script: importAll(spec.app === 'unbundled' ? unbundledDir : options.packagedAppDir),
      env: cleanEnv(spec.telemetry ? { ...TELEMETRY_ENV } : {}),
      flags: spec.sourceMaps ? ['--enable-source-maps'] : [],
    };
  }
  const times = medianTimes(specs, runs);
  return {
    runs,
    baselineMs: times.baseline ?? Number.NaN,
    cases: cases.map((spec, i) => ({ ...spec, medianMs: times[i] ?? Number.NaN })),
  };
}

const ms = (value: number) => `${value.toFixed(1)} ms`;

/** The figures as a Markdown table (printed by `npm run package`, written by `npm run bench`). */
export function describeColdStarts(figures: ColdStartFigures): string {
  const find = (app: ColdStartCase['app'], telemetry: boolean, sourceMaps = false) =>
    figures.cases.find((c) => c.app === app && c.telemetry === telemetry && c.sourceMaps === sourceMaps);
  const lines = [
    '| app | telemetry | time | vs empty Node process | packaged vs unbundled |',
    '|---|---|---|---|---|',
    `| empty Node process (baseline) | | ${ms(figures.baselineMs)} | 1.00× | |`,
  ];
  for (const telemetry of [false, true]) {
    const unbundled = find('unbundled', telemetry);
    const packaged = find('packaged', telemetry);
    const label = telemetry ? 'configured' : 'off';
    if (unbundled) {
      lines.push(
        `| unbundled build (dist/) | ${label} | ${ms(unbundled.medianMs)} | ${ratio(unbundled.medianMs, figures.baselineMs)} | 1.00× |`,
      );
    }
    for (const row of [packaged, find('packaged', telemetry, true)]) {
      if (!row || !unbundled) continue;
      const what = row.sourceMaps ? 'deploy package, `--enable-source-maps`' : 'deploy package';
      lines.push(
        `| ${what} | ${label} | ${ms(row.medianMs)} | ${ratio(row.medianMs, figures.baselineMs)} | ${ratio(row.medianMs, unbundled.medianMs)} |`,
      );
    }
  }
  return lines.join('\n');
}
