/**
 * The deploy package as Azure receives it: `node dist/tools/package.js` (what `npm run package` runs
 * after the build) into a temporary folder, then its zip extracted with fflate's reader. Serve the
 * extracted folder with `startStack(env, { appDir })` (test/support/stack.ts).
 *
 * Built once per test file (the promise is cached in the module); call `removePackage()` in `afterAll`.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { unzipSync } from 'fflate';
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
