/**
 * `npm run package`: the deploy zip, extracted for real (fflate's reader, compared byte for byte), holds
 * only what runs in Azure, stays within budget, and the extracted app, served by the local host in plain
 * Node with nothing but its own files, applies an update event end to end against the sandbox. And `azd package`,
 * run step by step as azd runs it, finds that app where azure.yaml points.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { writeZip } from '../../tools/zip.js';
import {
  type AzdPackageRun,
  copyRepository,
  type ExtractedPackage,
  extractedPackage,
  removeAzdCopy,
  removePackage,
  runAzdPackage,
} from '../support/package.js';
import { isolatedEnv, REPO_ROOT, requestsOf, type Stack, startStack } from '../support/stack.js';

const run = promisify(execFile);
const BUDGET = 5 * 1024 * 1024;

let pkg: ExtractedPackage;
beforeAll(async () => {
  pkg = await extractedPackage();
}, 120_000);
afterAll(async () => {
  await removePackage();
});

const repoManifest = () => JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
const fileNames = () => pkg.entries.map((entry) => entry.name);
const javascript = () =>
  pkg.entries.filter((entry) => entry.name.endsWith('.js')).map((entry) => entry.data.toString('utf8'));

describe('the deploy zip', () => {
  it(`is at most ${BUDGET / 1024 / 1024} MB, and npm run package prints its size`, () => {
    expect(pkg.zipBytes).toBeLessThanOrEqual(BUDGET);
    expect(pkg.report.zipBytes).toBe(pkg.zipBytes);
    expect(pkg.printed).toMatch(
      /Zip: .*partner-center-referral-webhook\.zip\s+\d+\.\d\d MB \(within the 5\.00 MB budget\)/,
    );
  });

  it('extracts to exactly the staging folder, byte for byte', () => {
    const staged = pkg.report.files.map(({ path }) => path).sort();
    expect(fileNames().sort()).toEqual(staged);
    for (const entry of pkg.entries) {
      expect(entry.data.equals(readFileSync(join(pkg.report.appDir, entry.name))), entry.name).toBe(true);
    }
  });

  it('is deterministic: zipping the staging folder again gives the same bytes', () => {
    const again = writeZip(
      pkg.report.files.map(({ path }) => ({ name: path, data: readFileSync(join(pkg.report.appDir, path)) })),
    );
    expect(Buffer.from(again).equals(readFileSync(pkg.zipPath))).toBe(true);
  });

  it('holds host.json, a production package.json and the bundles: no sources, dev, test or local files', () => {
    const names = fileNames();
    expect(names).toContain('host.json');
    expect(names).toContain('package.json');
    const topLevel = new Set(names.map((name) => name.split('/')[0]));
    // No node_modules: everything the app runs is bundled.
    expect([...topLevel].sort()).toEqual(['dist', 'host.json', 'package.json']);
    const unwanted = names.filter(
      (name) =>
        /^(dev|test|tools|shared|functions|scripts|docs|infra|connector)\//.test(name) ||
        /^dist\/(dev|tools|shared|test|package)\//.test(name) ||
        /(^|\/)local\.settings(\.sample)?\.json$/.test(name) ||
        /\.(ts|mts|cts)$/.test(name) ||
        /(^|\/)(tsconfig[^/]*|biome|vitest\.config[^/]*)\.json$/.test(name),
    );
    expect(unwanted).toEqual([]);
    expect(readFileSync(join(pkg.appDir, 'host.json'), 'utf8')).toBe(
      readFileSync(join(REPO_ROOT, 'host.json'), 'utf8'),
    );
  });

  it('has a package.json with the same main glob, type module, no scripts and no devDependencies', () => {
    const manifest = JSON.parse(readFileSync(join(pkg.appDir, 'package.json'), 'utf8'));
    const repo = repoManifest();
    expect(manifest).toMatchObject({ name: repo.name, version: repo.version, type: 'module', main: repo.main });
    expect(manifest.devDependencies).toBeUndefined();
    expect(manifest.scripts).toBeUndefined();
    // Nothing to install: everything the app runs is bundled (and the zip holds no node_modules, above).
    expect(manifest.dependencies).toBeUndefined();
  });

  it("passes the build's entry-point check: main matches exactly one bundle per function in functions/", async () => {
    const { stdout } = await run(process.execPath, ['scripts/check-entry-points.mjs', pkg.appDir], { cwd: REPO_ROOT });
    expect(stdout).toContain('entry points OK');
    const functions = readdirSync(join(REPO_ROOT, 'functions')).filter((file) => file.endsWith('.ts'));
    expect(pkg.report.entryPoints).toHaveLength(functions.length);
  });

  it('leaves @azure/functions-core to the worker: required at run time, neither bundled nor shipped', () => {
    const code = javascript();
    expect(code.some((text) => /require\("@azure\/functions-core"\)/.test(text))).toBe(true);
    expect(fileNames().filter((name) => name.includes('functions-core'))).toEqual([]);
    // The local stub's own code must not have been bundled in its place.
    expect(code.some((text) => text.includes('functions-core-stub'))).toBe(false);
  });

  it('bundles Application Insights into chunks that load only on demand, never with the entry points', () => {
    expect(pkg.report.telemetryOutputs.length).toBeGreaterThan(0);
    const startup = pkg.report.outputs.filter((output) => output.startup).map((output) => output.path);
    expect(startup.filter((path) => pkg.report.telemetryOutputs.includes(path))).toEqual([]);
    for (const path of startup) {
      const bundled = Object.keys(pkg.report.outputs.find((o) => o.path === path)?.packages ?? {});
      expect(bundled.filter((name) => /^(applicationinsights|@opentelemetry\/|@azure\/monitor)/.test(name))).toEqual(
        [],
      );
    }
  });

  it('bundles zod with its English messages only (the other locales are half its size, parsed at load)', () => {
    const code = javascript().join('\n');
    expect(code).toContain('zod/v4/locales/en.js');
    expect(code).not.toMatch(/zod\/v4\/locales\/(?!en\.js|en-only\.js)[a-zA-Z-]+\.js/);
  });

  it('bundles undici and the Azure SDKs into chunks that load only on demand, without source maps', () => {
    const lazySdk = /^(undici|@azure\/(identity|msal-node|keyvault-secrets|data-tables))$/;
    const holding = pkg.report.outputs.filter((output) => Object.keys(output.packages).some((n) => lazySdk.test(n)));
    expect(holding.length).toBeGreaterThan(0);
    expect(holding.filter((output) => output.startup).map((output) => output.path)).toEqual([]);
    // Their own chunks hold only the app's re-export modules (shared/partner-center/undici.ts…): nothing to map.
    // (The telemetry chunk holds app code, and tedious's own old @azure/identity.)
    const own = holding.filter((output) => !pkg.report.telemetryOutputs.includes(output.path));
    expect(own.length).toBeGreaterThanOrEqual(4);
    expect(own.filter((output) => output.sourceMap).map((output) => output.path)).toEqual([]);
  });

  it('ships source maps for the files holding the app code, pointing at functions/ and shared/', () => {
    const maps = pkg.entries.filter((entry) => entry.name.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(0);
    const sources = maps.flatMap((entry) => (JSON.parse(entry.data.toString('utf8')) as { sources: string[] }).sources);
    expect(sources).toContain('../../functions/referral-updates.ts');
    expect(sources.some((source) => /^\.\.\/\.\.\/shared\/.+\.ts$/.test(source))).toBe(true);
    expect(sources.some((source) => source.includes('/tmp/') || source.includes(REPO_ROOT))).toBe(false);
  });
});

describe('the extracted package under the local host (plain Node, its own files only)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ IDEMPOTENCY_STORE: 'memory' }, { appDir: pkg.appDir });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('serves the packaged app, not the build in dist/', () => {
    expect(stack.host.output()).toContain(`App: ${pkg.appDir}`);
    expect(stack.host.output()).toMatch(/referral-updates: \[POST\]/);
    expect(stack.host.output()).toMatch(/health: \[GET\]/);
  });

  it('applies an update event end to end: token from the identity endpoint, GET, PUT with If-Match', async () => {
    const id = SEED_IDS.newPending;
    const answer = await stack.post({ referralId: id, substatus: 'Won', dealValue: 125000, currency: 'eur' });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toMatchObject({ referralId: id, outcome: 'updated', status: 'Closed', substatus: 'Won' });
    const stored = stack.sandbox.getReferral(id) as {
      status: string;
      substatus: string;
      details: Record<string, unknown>;
    };
    expect(stored).toMatchObject({ status: 'Closed', substatus: 'Won' });
    expect(stored.details).toMatchObject({ dealValue: 125000, currency: 'EUR' });
    const puts = requestsOf(stack.sandbox, 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0]?.headers['if-match']).toBeTruthy();
    expect(stack.identity.issued.length).toBeGreaterThan(0);
  });

  it('answers /api/health with the package version', async () => {
    const health = await stack.health();
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ version: repoManifest().version });
  });

  it('stays on loopback and prints no module errors', () => {
    expect(stack.host.output()).not.toMatch(
      /loopback guard|Cannot find module|ERR_MODULE|is not a function|Dynamic require/,
    );
  });
});

/** The registrations (name, bindings) the worker receives when plain Node imports the app in `cwd`. */
async function registrations(cwd: string): Promise<unknown[]> {
  const stub = join(REPO_ROOT, 'dist', 'dev', 'host', 'functions-core-stub.cjs');
  const script = `
    import Module, { createRequire } from 'node:module';
    import { globSync, readFileSync } from 'node:fs';
    const resolveFilename = Module._resolveFilename;
    Module._resolveFilename = function (request, ...rest) {
      return request === '@azure/functions-core' ? ${JSON.stringify(stub)} : resolveFilename.call(this, request, ...rest);
    };
    const { main } = JSON.parse(readFileSync('package.json', 'utf8'));
    for (const file of globSync(main).sort()) await import('./' + file);
    const { registrations } = createRequire(${JSON.stringify(stub)})(${JSON.stringify(stub)});
    const metadata = registrations.map((r) => r.metadata).sort((a, b) => (a.name < b.name ? -1 : 1));
    console.log('REGISTRATIONS=' + JSON.stringify(metadata));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd,
    env: isolatedEnv({ IDEMPOTENCY_STORE: 'memory' }),
  });
  const line = stdout.split('\n').find((l) => l.startsWith('REGISTRATIONS='));
  return JSON.parse(line?.slice('REGISTRATIONS='.length) ?? '[]');
}

it('registers exactly what the unbundled build registers when plain Node imports its entry points', async () => {
  const packaged = await registrations(pkg.appDir);
  expect(packaged.map((r) => (r as { name: string }).name)).toEqual(
    expect.arrayContaining(['health', 'referral-updates']),
  );
  expect(packaged).toEqual(await registrations(REPO_ROOT));
});

/**
 * `azd package` (the first step of `azd up`) as azd runs it for a Node service: restore, the `prepackage` hook,
 * azd's own `npm run build`, then the folder `dist` names in azure.yaml must hold the app (runAzdPackage in
 * test/support/package.ts; docs/deploy.md#how-azd-builds-the-package). In a copy of the repository, so the
 * builds never touch this one's dist/.
 */
describe('azd package, step by step as azd runs it', () => {
  let azd: AzdPackageRun;
  const copies: string[] = [];
  beforeAll(async () => {
    const copy = copyRepository();
    copies.push(copy);
    azd = await runAzdPackage('api', copy);
  }, 240_000);
  afterAll(() => {
    for (const copy of copies) removeAzdCopy(copy);
  });

  it('runs the prepackage hook (npm run package) before its own npm run build, and finds the folder azure.yaml names', () => {
    expect(azd.steps).toEqual([
      'restore: node_modules up to date, npm install skipped',
      'prepackage: npm run package',
      'npm run build --if-present',
      'zip out/package/app',
    ]);
    expect(azd.output).toContain('entry points OK');
  });

  it('the folder holds the app the packager staged, intact after azd emptied and rebuilt dist/', async () => {
    const report = JSON.parse(
      readFileSync(join(azd.packageSource, '..', 'package-report.json'), 'utf8'),
    ) as ExtractedPackage['report'];
    expect(report.appDir).toBe(azd.packageSource);
    const staged = report.files.map(({ path }) => path).sort();
    const found = readdirSync(azd.packageSource, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(azd.packageSource, join(entry.parentPath, entry.name)).split(sep).join('/'))
      .sort();
    expect(found).toEqual(staged);
    for (const { path, bytes } of report.files) expect(statSync(join(azd.packageSource, path)).size, path).toBe(bytes);
    expect(found).toEqual(expect.arrayContaining(['host.json', 'package.json']));
    expect(found.some((name) => name.startsWith('node_modules/'))).toBe(false);
    // azd's `npm run build` ran after the hook: dist/ holds a fresh tsc build, and the package is still there.
    expect(existsSync(join(azd.projectDir, 'dist', 'functions', 'health.js'))).toBe(true);
    const { stdout } = await run(process.execPath, ['scripts/check-entry-points.mjs', azd.packageSource], {
      cwd: azd.projectDir,
    });
    expect(stdout).toContain('entry points OK');
  });

  it("the packaged app registers the same functions as the repository's build", async () => {
    expect(await registrations(azd.packageSource)).toEqual(await registrations(REPO_ROOT));
  });

  it('would have stopped before provisioning with the earlier azure.yaml (dist/package/app, no hook): azd empties dist/', async () => {
    const copy = copyRepository();
    copies.push(copy);
    const yamlPath = join(copy, 'azure.yaml');
    const yaml = readFileSync(yamlPath, 'utf8');
    const earlier = yaml
      .replace('dist: out/package/app', 'dist: dist/package/app')
      .replace(/\n {4}hooks:[\s\S]*$/, '\n');
    expect(earlier).not.toMatch(/^ +prepackage:/m);
    writeFileSync(yamlPath, earlier);
    await expect(runAzdPackage('api', copy)).rejects.toThrow(
      /package source '.*\/dist\/package\/app' is empty or does not exist/,
    );
  }, 120_000);
});
