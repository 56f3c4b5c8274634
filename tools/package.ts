/**
 * `npm run package`: the deployment package for Flex Consumption, built from the compiled app in dist/ into
 * out/package/ (`azd package`/`azd up` run it through the `prepackage` hook in azure.yaml and deploy app/;
 * `az functionapp deployment source config-zip` or `azd deploy --from-package` take the zip).
 *
 * <out>/app/            the staging folder: what the zip holds, runnable by the local host
 *   host.json           the repository's
 *   package.json        production only: `type: module`, the same `main` glob, no scripts, no dependencies
 *   dist/functions/*.js one bundled entry point per function (esbuild, ESM, code splitting)
 *   dist/chunks/*.js    shared code, and one lazily loaded chunk per dynamic `import()`: the Azure SDK,
 *                       undici, and Application Insights load only when first needed
 *   dist/**.js.map      source maps, only for the files holding the app's own code (see SOURCE MAPS)
 * <out>/partner-center-referral-webhook.zip   the same files, deterministic
 * <out>/package-report.json                   what was built: files, sizes, startup set, externals
 *
 * `@azure/functions-core` stays external: the Functions worker provides it at run time (and the local
 * host a stub). Everything else is bundled, the telemetry stack included (it works bundled: its undici
 * instrumentation uses diagnostics channels, and the module-patching instrumentations are off), so the
 * package has no node_modules (docs/performance.md).
 *
 * Usage: node dist/tools/package.js [--out <dir>] [--no-zip]
 */
import {
  copyFileSync,
  existsSync,
  globSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { writeZip, type ZipEntry } from './zip.js';

/** The repository (the folder holding package.json), from dist/tools/ or tools/. */
export const REPO_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url));
/**
 * Outside dist/: every npm script that builds (and azd's own `npm run build`) empties dist/ first, so a package
 * staged there would be gone before azd could zip it (docs/deploy.md#how-azd-builds-the-package). `out/` is
 * git-ignored and emptied only by this packager.
 */
export const DEFAULT_OUT_DIR = join(REPO_ROOT, 'out', 'package');
export const ZIP_NAME = 'partner-center-referral-webhook.zip';
/** The issue's budget for the zip. */
export const ZIP_BUDGET_BYTES = 5 * 1024 * 1024;

/** Provided by the Functions worker at run time (never installed, never bundled). */
export const WORKER_PROVIDED = ['@azure/functions-core'];

/**
 * SOURCE MAPS: the bundles are not minified (function names and code stay readable in stack traces
 * without any tooling; minifying measured no import-time gain). Maps are shipped for
 * the files that hold the app's own code, so `--enable-source-maps` (languageWorkers__node__arguments)
 * turns those frames into `functions/…ts` / `shared/…ts` lines; frames inside libraries stay as readable
 * bundle lines. Sources content is left out (the code is in the repository).
 */
const APP_SOURCE = /^(functions|shared)\//;

/**
 * An app module that only re-exports a package (shared/partner-center/undici.ts, the lazy doorway to an
 * SDK) holds no code of the app's own: its chunk is library code and gets no map.
 */
function reExportsOnly(file: string): boolean {
  const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
  return code.replace(/export\s*\{[^}]*\}\s*from\s*(['"])[^'"./][^'"]*\1\s*;?/g, '').trim() === '';
}

/**
 * Each chunk defines `require` (CommonJS code inside the bundle calls it for Node built-ins and for
 * `@azure/functions-core`); `__dirname`/`__filename` come from INJECTED_GLOBALS.
 */
const BANNER =
  "import { createRequire as __pcrwCreateRequire } from 'node:module'; const require = __pcrwCreateRequire(import.meta.url);";
const INJECTED_GLOBALS = 'pcrw:cjs-globals';

export interface PackageOptions {
  /** Where to write app/, the zip and the report (default out/package). Emptied first. */
  outDir?: string;
  /** Write the zip (default true). */
  zip?: boolean;
}

export interface PackagedFile {
  /** Relative to the app folder, forward slashes. */
  path: string;
  bytes: number;
}

export interface PackageOutput extends PackagedFile {
  /** Imported when the entry points load (statically reachable from one); the rest loads on demand. */
  startup: boolean;
  /** Has a source map next to it. */
  sourceMap: boolean;
  /** npm packages bundled into this file, with their bytes in it. */
  packages: Record<string, number>;
}

export interface PackageResult {
  appDir: string;
  /** Undefined with `zip: false`. */
  zipPath: string | undefined;
  zipBytes: number | undefined;
  main: string;
  entryPoints: string[];
  outputs: PackageOutput[];
  files: PackagedFile[];
  /** Files holding Application Insights / OpenTelemetry: none of them may be a startup file. */
  telemetryOutputs: string[];
  buildMs: number;
}

interface RepoManifest {
  name: string;
  version: string;
  description?: string;
  license?: string;
  main?: string;
  engines?: Record<string, string>;
}

const toPosix = (path: string) => path.split(sep).join('/');

function packageNameOf(input: string): string | undefined {
  const match = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input.slice(input.lastIndexOf('node_modules/')));
  return match?.[1];
}

/** `__dirname` / `__filename` for CommonJS code inside the ESM bundle: the chunk's own folder and file. */
function cjsGlobals(): esbuild.Plugin {
  return {
    name: 'cjs-globals',
    setup(build) {
      build.onResolve({ filter: new RegExp(`^${INJECTED_GLOBALS}$`) }, (args) => ({
        path: args.path,
        namespace: 'cjs-globals',
      }));
      build.onLoad({ filter: /.*/, namespace: 'cjs-globals' }, () => ({
        contents: [
          "import { dirname } from 'node:path';",
          "import { fileURLToPath } from 'node:url';",
          'const file = fileURLToPath(import.meta.url);',
          'const folder = dirname(file);',
          'export { folder as __dirname, file as __filename };',
        ].join('\n'),
        resolveDir: REPO_ROOT,
        loader: 'js',
      }));
    },
  };
}

/**
 * zod's `locales` namespace (`z.locales.*`, `z.core.locales.*`) holds every translation of its error messages,
 * half of zod's bundle and a third of the JavaScript parsed at load; the app uses the English messages zod
 * configures by default (`locales/en.js`, imported by zod itself), so the namespace keeps only `en`
 * (docs/performance-analysis.md#start-up-and-telemetry).
 */
function zodEnglishOnly(): esbuild.Plugin {
  return {
    name: 'zod-english-only',
    setup(build) {
      build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
        /[\\/]zod[\\/]v4[\\/](classic|core|mini)$/.test(args.resolveDir)
          ? {
              // A name, not a path: a source map must not carry the build machine's folders.
              path: 'zod/v4/locales/en-only.js',
              namespace: 'zod-locales',
              pluginData: { localesDir: join(args.resolveDir, '..', 'locales') },
            }
          : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
        contents: "export { default as en } from './en.js';",
        resolveDir: (args.pluginData as { localesDir: string }).localesDir,
        loader: 'js',
      }));
    },
  };
}

/** The files an app folder holds, relative, sorted. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => toPosix(relative(dir, join(entry.parentPath, entry.name))))
    .sort();
}

/**
 * Source map `sources` relative to the app folder as if the repository's files sat in it
 * (`../../shared/x.ts` from dist/chunks/), so a mapped stack frame reads `<app>/shared/x.ts:12`.
 */
function rebaseSourceMap(mapFile: string, appDir: string): void {
  const map = JSON.parse(readFileSync(mapFile, 'utf8')) as { sources: string[]; sourceRoot?: string };
  const mapDir = dirname(mapFile);
  map.sources = map.sources.map((source) => {
    if (/^[a-z]+:/i.test(source)) return source;
    const absolute = resolve(mapDir, source);
    const inRepo = relative(REPO_ROOT, absolute);
    if (inRepo.startsWith('..') || isAbsolute(inRepo)) return source;
    return toPosix(relative(mapDir, join(appDir, inRepo)));
  });
  writeFileSync(mapFile, JSON.stringify(map));
}

export async function buildPackage(options: PackageOptions = {}): Promise<PackageResult> {
  const started = performance.now();
  const outDir = resolve(options.outDir ?? DEFAULT_OUT_DIR);
  const appDir = join(outDir, 'app');
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as RepoManifest;
  const main = manifest.main;
  if (!main?.startsWith('dist/')) throw new Error(`package: package.json "main" (${main}) must point into dist/`);
  // The entry points the worker would load from the built app: the same glob, the same files.
  const entryPoints = globSync(main, { cwd: REPO_ROOT }).map(toPosix).sort();
  if (entryPoints.length === 0) throw new Error(`package: "${main}" matches no built file: run "npm run build" first`);

  // Emptied first, so only ever a folder this wrote before (or an empty or new one).
  if (existsSync(outDir) && readdirSync(outDir).length > 0 && !existsSync(join(outDir, 'package-report.json'))) {
    throw new Error(`package: ${outDir} is not empty and holds no earlier package: refusing to empty it`);
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(appDir, { recursive: true });

  const result = await esbuild.build({
    absWorkingDir: REPO_ROOT,
    entryPoints: entryPoints.map((entry) => join(REPO_ROOT, entry)),
    outbase: REPO_ROOT,
    outdir: appDir,
    chunkNames: 'dist/chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    external: WORKER_PROVIDED,
    banner: { js: BANNER },
    inject: [INJECTED_GLOBALS],
    plugins: [cjsGlobals(), zodEnglishOnly()],
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
  });
  for (const warning of result.warnings) {
    const [formatted] = await esbuild.formatMessages([warning], { kind: 'warning' });
    process.stderr.write(formatted ?? '');
  }

  // The startup set: entry points and what they import statically, transitively.
  const outputs = result.metafile.outputs;
  const startup = new Set<string>();
  const visit = (file: string) => {
    if (startup.has(file)) return;
    startup.add(file);
    for (const imported of outputs[file]?.imports ?? []) {
      if (imported.kind === 'import-statement' && !imported.external) visit(imported.path);
    }
  };
  // (Dynamically imported chunks carry an `entryPoint` too: only the real entry points are roots.)
  const roots = new Set(entryPoints);
  for (const [file, output] of Object.entries(outputs)) {
    if (output.entryPoint && roots.has(toPosix(output.entryPoint))) visit(file);
  }

  const packaged: PackageOutput[] = [];
  for (const [file, output] of Object.entries(outputs)) {
    if (file.endsWith('.map')) continue;
    const absolute = join(REPO_ROOT, file);
    const path = toPosix(relative(appDir, absolute));
    // A syntax check of what Node will parse: the banner's `require` must not collide with a declaration.
    await esbuild.transform(readFileSync(absolute, 'utf8'), { format: 'esm', loader: 'js', logLevel: 'silent' });
    const packages: Record<string, number> = {};
    let appCode = false;
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = packageNameOf(input);
      if (name) packages[name] = (packages[name] ?? 0) + bytesInOutput;
      else if (
        APP_SOURCE.test(toPosix(relative('dist', input))) &&
        bytesInOutput > 0 &&
        !reExportsOnly(join(REPO_ROOT, input))
      ) {
        appCode = true;
      }
    }
    const mapFile = `${absolute}.map`;
    if (appCode) rebaseSourceMap(mapFile, appDir);
    else {
      rmSync(mapFile, { force: true });
      const code = readFileSync(absolute, 'utf8').replace(/\n\/\/# sourceMappingURL=[^\n]*\n?$/, '\n');
      writeFileSync(absolute, code);
    }
    packaged.push({
      path,
      bytes: statSync(absolute).size,
      startup: startup.has(file),
      sourceMap: appCode,
      packages,
    });
  }
  packaged.sort((a, b) => (a.path < b.path ? -1 : 1));

  // Production package.json: what the worker reads (type, main); everything it runs is bundled.
  const production = {
    name: manifest.name,
    version: manifest.version,
    description: manifest.description,
    license: manifest.license,
    private: true,
    type: 'module',
    main,
    engines: manifest.engines,
  };
  writeFileSync(join(appDir, 'package.json'), `${JSON.stringify(production, null, 2)}\n`);
  copyFileSync(join(REPO_ROOT, 'host.json'), join(appDir, 'host.json'));

  const files = listFiles(appDir).map((path) => ({ path, bytes: statSync(join(appDir, path)).size }));
  let zipPath: string | undefined;
  let zipBytes: number | undefined;
  if (options.zip !== false) {
    const entries: ZipEntry[] = files.map(({ path }) => ({ name: path, data: readFileSync(join(appDir, path)) }));
    const zip = writeZip(entries);
    zipPath = join(outDir, ZIP_NAME);
    writeFileSync(zipPath, zip);
    zipBytes = zip.length;
  }
  const telemetryOutputs = packaged
    .filter(({ packages }) =>
      Object.keys(packages).some((name) => /^(applicationinsights|@opentelemetry\/)/.test(name)),
    )
    .map(({ path }) => path);

  const report: PackageResult = {
    appDir,
    zipPath,
    zipBytes,
    main,
    entryPoints,
    outputs: packaged,
    files,
    telemetryOutputs,
    buildMs: Math.round(performance.now() - started),
  };
  writeFileSync(join(outDir, 'package-report.json'), `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

export const formatBytes = (bytes: number) =>
  bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`;

/** JavaScript bytes loaded with the entry points, loaded on demand, and of the telemetry stack (on demand). */
export function packageSizes(result: PackageResult): {
  startupBytes: number;
  lazyBytes: number;
  telemetryBytes: number;
} {
  const total = (keep: (output: PackageOutput) => boolean) =>
    result.outputs.filter(keep).reduce((sum, output) => sum + output.bytes, 0);
  return {
    startupBytes: total((o) => o.startup),
    lazyBytes: total((o) => !o.startup),
    telemetryBytes: total((o) => result.telemetryOutputs.includes(o.path)),
  };
}

/** The package summary `npm run package` prints. */
export function describePackage(result: PackageResult): string {
  const lines: string[] = [];
  const { startupBytes, lazyBytes } = packageSizes(result);
  lines.push(`Package: ${relative(process.cwd(), result.appDir) || '.'} (${result.files.length} files)`);
  if (result.zipPath && result.zipBytes !== undefined) {
    const verdict = result.zipBytes <= ZIP_BUDGET_BYTES ? 'within' : 'OVER';
    lines.push(
      `Zip:     ${relative(process.cwd(), result.zipPath)}  ${formatBytes(result.zipBytes)} (${verdict} the ${formatBytes(ZIP_BUDGET_BYTES)} budget)`,
    );
  }
  lines.push(`Entry points ("${result.main}"): ${result.entryPoints.length}`);
  lines.push(`JavaScript loaded at startup: ${formatBytes(startupBytes)}; on demand: ${formatBytes(lazyBytes)}`);
  const top = (packages: Record<string, number>) =>
    Object.entries(packages)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([name]) => name)
      .join(', ');
  for (const output of [...result.outputs].sort((a, b) => b.bytes - a.bytes).slice(0, 8)) {
    const what = top(output.packages) || 'app code';
    lines.push(
      `  ${output.startup ? 'startup ' : 'lazy    '} ${formatBytes(output.bytes).padStart(9)}  ${output.path}  (${what})`,
    );
  }
  lines.push(`Not bundled: ${WORKER_PROVIDED.map((n) => `${n} (the worker provides it)`).join('; ')}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      'no-zip': { type: 'boolean', default: false },
    },
  });
  const result = await buildPackage({ outDir: values.out, zip: !values['no-zip'] });
  process.stdout.write(`${describePackage(result)}\nBuilt in ${result.buildMs} ms.\n`);
  if (result.zipBytes !== undefined && result.zipBytes > ZIP_BUDGET_BYTES) process.exitCode = 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `package failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
