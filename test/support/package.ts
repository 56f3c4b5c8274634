/**
 * The deploy package as Azure receives it: `node dist/tools/package.js` (what `npm run package` runs
 * after the build) into a temporary folder, then its zip extracted with fflate's reader. Serve the
 * extracted folder with `startStack(env, { appDir })` (test/support/stack.ts).
 *
 * Built once per test file (the promise is cached in the module); call `removePackage()` in `afterAll`.
 *
 * Also `runAzdPackage()`: `azd package` as azd runs it for this service, in a copy of the repository.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { unzipSync } from 'fflate';
import { parse as parseYaml } from 'yaml';
import type { PackageResult } from '../../tools/package.js';
import { isolatedEnv, REPO_ROOT } from './stack.js';

const run = promisify(execFile);

export interface ExtractedPackage {
  /** The temporary folder holding app/ (the staging folder), the zip, the report and extracted/. */
  outDir: string;
  /** What tools/package.ts reported (package-report.json). */
  report: PackageResult;
  /** What `node dist/tools/package.js` printed. */
  printed: string;
  zipPath: string;
  zipBytes: number;
  /** The zip's files (no folder entries), in archive order. */
  entries: { name: string; data: Buffer }[];
  /** The zip's content, extracted: the folder to serve. */
  appDir: string;
}

let built: Promise<ExtractedPackage> | undefined;

async function build(): Promise<ExtractedPackage> {
  const outDir = mkdtempSync(join(tmpdir(), 'pcrw-package-'));
  const { stdout } = await run(process.execPath, ['dist/tools/package.js', '--out', outDir], {
    cwd: REPO_ROOT,
    env: isolatedEnv(),
    maxBuffer: 16 * 1024 * 1024,
  });
  const report = JSON.parse(readFileSync(join(outDir, 'package-report.json'), 'utf8')) as PackageResult;
  if (!report.zipPath) throw new Error('the package was built without a zip');
  const zip = readFileSync(report.zipPath);
  const entries = Object.entries(unzipSync(zip)).map(([name, data]) => ({ name, data: Buffer.from(data) }));
  const appDir = join(outDir, 'extracted');
  for (const entry of entries) {
    const target = resolve(appDir, entry.name);
    if (!target.startsWith(appDir + sep)) throw new Error(`zip entry escapes the folder: ${entry.name}`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, entry.data);
  }
  return { outDir, report, printed: stdout, zipPath: report.zipPath, zipBytes: zip.length, entries, appDir };
}

/** The package, built and extracted on first use. */
export function extractedPackage(): Promise<ExtractedPackage> {
  built ??= build();
  return built;
}

export async function removePackage(): Promise<void> {
  const done = await built?.catch(() => undefined);
  if (done) rmSync(done.outDir, { recursive: true, force: true });
  built = undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// `azd package` for this service, step by step as azd runs it
// ---------------------------------------------------------------------------------------------------------------

/** One service of azure.yaml, as far as packaging goes. */
export interface AzdService {
  project: string;
  language: string;
  host: string;
  dist?: string;
  remoteBuild?: boolean;
  hooks?: Record<string, { run: string; shell?: string } | { run: string; shell?: string }[]>;
}

export interface AzdPackageRun {
  /** The copy of the repository the sequence ran in (removed by `removeAzdCopy`). */
  copyDir: string;
  /** The service's project folder in the copy. */
  projectDir: string;
  /** The folder azd zips: `project` + `dist` of azure.yaml. */
  packageSource: string;
  /** What ran, in order. */
  steps: string[];
  /** What the hook and the build printed. */
  output: string;
}

/**
 * azd's `IsDependenciesUpToDate` for npm (Azure/azure-dev cli/azd/pkg/tools/node/detect.go): node_modules and its
 * `.package-lock.json` exist and the marker is not older than package-lock.json. Then azd skips `npm install`.
 */
export function azdDependenciesUpToDate(projectDir: string): boolean {
  try {
    const lock = statSync(join(projectDir, 'package-lock.json'));
    statSync(join(projectDir, 'node_modules'));
    const marker = statSync(join(projectDir, 'node_modules', '.package-lock.json'));
    return marker.mtimeMs >= lock.mtimeMs;
  } catch {
    return false;
  }
}

function hooksOf(service: AzdService, name: string): string[] {
  const hook = service.hooks?.[name];
  if (!hook) return [];
  return (Array.isArray(hook) ? hook : [hook]).map((h) => h.run);
}

/**
 * A copy of the repository as a clone has it (tracked and not ignored files: no dist/, no out/), with
 * node_modules linked to this repository's, installed as after `npm ci`.
 */
export function copyRepository(): string {
  const copyDir = mkdtempSync(join(tmpdir(), 'pcrw-azd-'));
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    maxBuffer: 16 * 1024 * 1024,
  })
    .toString('utf8')
    .split('\0')
    .filter(Boolean);
  for (const file of listed) {
    const from = join(REPO_ROOT, file);
    if (!existsSync(from) || lstatSync(from).isSymbolicLink() || !lstatSync(from).isFile()) continue;
    mkdirSync(dirname(join(copyDir, file)), { recursive: true });
    copyFileSync(from, join(copyDir, file));
  }
  symlinkSync(realpathSync(join(REPO_ROOT, 'node_modules')), join(copyDir, 'node_modules'), 'dir');
  return copyDir;
}

/**
 * `azd package` for the `api` service, in a copy of the repository, as azd runs it for a Node (`language: ts`)
 * service (Azure/azure-dev cli/azd/pkg/project/service_manager.go `Package`, framework_service_node.go,
 * tools/node/node.go; learn.microsoft.com/azure/developer/azure-developer-cli/azd-extensibility for the hooks):
 *
 * 1. restore, between the `prerestore` and `postrestore` hooks: `npm install --no-audit --no-fund --prefer-offline`
 *    in the project folder, skipped when node_modules is up to date. The copy's node_modules is this
 *    repository's, installed (as after the `npm ci` docs/deploy.md asks for): azd's own check says it is up to
 *    date, and the test never installs anything into the shared node_modules;
 * 2. the `prepackage` hooks, in the project folder;
 * 3. the framework's package: `npm run build --if-present`;
 * 4. azd's check: "package source '<project>/<dist>' is empty or does not exist" unless it holds files;
 *    then the function app target zips that folder as it is;
 * 5. the `postpackage` hooks.
 *
 * Throws azd's message at step 4 when the folder is missing or empty.
 */
export async function runAzdPackage(serviceName = 'api', copyDir = copyRepository()): Promise<AzdPackageRun> {
  const yaml = parseYaml(readFileSync(join(copyDir, 'azure.yaml'), 'utf8')) as {
    services: Record<string, AzdService>;
  };
  const service = yaml.services[serviceName];
  if (!service) throw new Error(`azure.yaml has no service ${serviceName}`);
  const projectDir = resolve(copyDir, service.project);
  const steps: string[] = [];
  let output = '';
  const env = isolatedEnv({ npm_config_update_notifier: 'false', npm_config_fund: 'false', CI: 'true' });
  const sh = async (command: string) => {
    const { stdout, stderr } = await run('sh', ['-c', command], {
      cwd: projectDir,
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    output += stdout + stderr;
  };

  // 1. restore
  for (const hook of hooksOf(service, 'prerestore')) {
    steps.push(`prerestore: ${hook}`);
    await sh(hook);
  }
  const marker = join(projectDir, 'node_modules', '.package-lock.json');
  const installed = statSync(marker).mtime;
  utimesSync(join(projectDir, 'package-lock.json'), installed, new Date(installed.getTime() - 1000));
  if (!azdDependenciesUpToDate(projectDir)) throw new Error('azd would run npm install: the test does not');
  steps.push('restore: node_modules up to date, npm install skipped');
  for (const hook of hooksOf(service, 'postrestore')) {
    steps.push(`postrestore: ${hook}`);
    await sh(hook);
  }

  // 2. prepackage hooks
  for (const hook of hooksOf(service, 'prepackage')) {
    steps.push(`prepackage: ${hook}`);
    await sh(hook);
  }
  // 3. the Node framework's package step
  steps.push('npm run build --if-present');
  await sh('npm run build --if-present');
  // 4. the folder azd zips
  const packageSource = resolve(projectDir, service.dist ?? '');
  const entries = existsSync(packageSource) ? readdirSync(packageSource) : [];
  if (entries.length === 0) {
    throw new Error(
      `package source '${packageSource}' is empty or does not exist. If your service has custom packaging requirements create a script named 'build' within your package.json and ensure your package artifacts are written to the '${packageSource}' directory`,
    );
  }
  steps.push(`zip ${relative(copyDir, packageSource)}`);
  // 5. postpackage hooks
  for (const hook of hooksOf(service, 'postpackage')) {
    steps.push(`postpackage: ${hook}`);
    await sh(hook);
  }
  return { copyDir, projectDir, packageSource, steps, output };
}

export function removeAzdCopy(copyDir: string): void {
  rmSync(copyDir, { recursive: true, force: true });
}
