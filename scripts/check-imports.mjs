/**
 * The import rules of the project's rooms (docs/architecture.md), checked over every source file:
 * `npm run check` runs it and fails on the first wrong import it reports.
 *
 * A room is a folder (or, for the composition root, a list of files). Each room names what it may
 * import: other rooms, npm packages and `node:` built-ins. `typeOnly` lists what it may reach only with
 * `import type` / `export type` (erased at build time, so no module is loaded). Everything else is refused.
 * A file belongs to the most specific room whose path is a prefix of its own.
 * In what the deploy package bundles (shared/, functions/), `import()` names a module of the app, never a
 * package: a lazy package comes through an app module that imports it statically.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SHARED_ROOT = ['shared/config.ts', 'shared/runtime.ts', 'shared/health.ts', 'shared/version.ts'];

/** Rooms, most specific first where they nest. `*` at the end of an entry matches a prefix. */
export const RULES = [
  {
    room: 'shared/core/',
    why: 'the pure rules: no I/O, no SDK, no zod',
    allow: ['shared/core/'],
  },
  {
    room: 'shared/contract/',
    why: 'contract v1 on the wire: zod schemas, header names, the OpenAPI document',
    allow: ['shared/core/', 'shared/contract/', 'zod'],
    typeOnly: ['openapi3-ts'],
  },
  {
    room: 'shared/http/',
    why: 'inbound HTTP mechanics: bodies, signatures, responses',
    allow: ['shared/core/', 'shared/contract/', 'shared/http/', 'node:*'],
    typeOnly: ['@azure/functions'],
  },
  {
    room: 'shared/use-cases/',
    why: 'the use cases: they see the edges only through their interfaces',
    allow: [
      'shared/core/',
      'shared/contract/',
      'shared/http/',
      'shared/use-cases/',
      'shared/idempotency/store.ts',
      'shared/delivery/store.ts',
      'shared/telemetry/event-record.ts',
      'node:*',
    ],
    typeOnly: [
      'shared/config.ts',
      'shared/partner-center/',
      'shared/auth/',
      'shared/idempotency/',
      'shared/delivery/',
      'shared/telemetry/',
    ],
  },
  {
    room: 'shared/partner-center/',
    why: 'the Referrals API client',
    allow: ['shared/core/', 'shared/contract/', 'shared/partner-center/', 'shared/version.ts', 'undici', 'node:*'],
    typeOnly: ['shared/config.ts', 'shared/auth/'],
  },
  {
    room: 'shared/auth/',
    why: 'token providers: managed identity, App+User, Entra, Key Vault',
    allow: ['shared/core/', 'shared/auth/', '@azure/identity', '@azure/keyvault-secrets', 'node:*'],
    typeOnly: ['shared/config.ts'],
  },
  {
    room: 'shared/idempotency/',
    why: 'the idempotency stores',
    allow: ['shared/core/', 'shared/idempotency/', 'shared/auth/managed-identity.ts', '@azure/data-tables', 'node:*'],
    typeOnly: ['shared/config.ts'],
  },
  {
    room: 'shared/delivery/',
    why: 'durable delivery: the deliveries table and the queue',
    allow: [
      'shared/core/',
      'shared/delivery/',
      'shared/auth/managed-identity.ts',
      'shared/idempotency/table-client.ts',
      'shared/idempotency/data-tables.ts',
      '@azure/data-tables',
      '@azure/storage-queue',
      'node:*',
    ],
    typeOnly: ['shared/config.ts', 'shared/idempotency/store.ts'],
  },
  {
    room: 'shared/telemetry/',
    why: 'the event record, its log line, Application Insights',
    allow: [
      'shared/core/',
      'shared/contract/',
      'shared/telemetry/',
      'shared/auth/managed-identity.ts',
      'shared/version.ts',
      'applicationinsights',
      '@opentelemetry/*',
      '@azure/identity',
      'node:*',
    ],
    typeOnly: ['shared/config.ts'],
  },
  {
    room: SHARED_ROOT,
    why: 'the composition root: configuration, wiring, health, version',
    allow: ['shared/', 'zod', 'node:*'],
  },
  {
    room: 'shared/',
    why: 'a file of shared/ outside every room: put it in one',
    allow: [],
  },
  {
    room: 'functions/',
    why: 'thin entry points: parse the trigger, call one use case, map its result',
    allow: ['shared/use-cases/', 'shared/http/', 'shared/contract/', ...SHARED_ROOT, '@azure/functions', 'node:*'],
  },
  {
    room: 'dev/sandbox/',
    why: 'the Partner Center sandbox, written from the API reference: never the app',
    allow: ['dev/sandbox/', 'dev/support/', 'node:*', '*'],
    deny: ['shared/', 'functions/', 'tools/', 'test/'],
  },
  {
    room: 'dev/emulators/',
    why: 'emulators of Azure services, independent of the app',
    allow: ['dev/emulators/', 'dev/support/', 'node:*', '*'],
    deny: ['shared/', 'functions/', 'tools/', 'test/'],
  },
  {
    room: 'dev/',
    why: 'the local host, the bench and their support',
    allow: ['dev/', 'shared/', 'tools/', 'node:*', '*'],
    deny: ['functions/', 'test/'],
  },
  {
    room: 'tools/',
    why: 'the packager, the connector generator, the bootstrap',
    allow: ['tools/', 'shared/', 'node:*', '*'],
    deny: ['functions/', 'dev/', 'test/'],
  },
];

const SOURCE = /\.(ts|mts|cts|mjs|js|cjs)$/;
const SCANNED = ['shared', 'functions', 'dev', 'tools'];

function inRoom(file, room) {
  return Array.isArray(room) ? room.includes(file) : file.startsWith(room);
}

/** The rule of the most specific room holding the file. */
export function ruleFor(file) {
  return RULES.find((rule) => inRoom(file, rule.room));
}

function matches(target, entry) {
  if (entry === '*')
    return (
      !target.includes('/') || target.startsWith('@') || !/^(shared|functions|dev|tools|test|scripts)\//.test(target)
    );
  if (entry.endsWith('*')) return target.startsWith(entry.slice(0, -1));
  if (entry.endsWith('/')) return target.startsWith(entry);
  return target === entry;
}

/** The package of a bare specifier (`@scope/name`, `name`), or the `node:` id itself. */
function packageOf(specifier) {
  if (specifier.startsWith('node:')) return specifier;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const SOURCE_OF = { '.js': ['.ts', '.js'], '.cjs': ['.cts', '.cjs'], '.mjs': ['.mts', '.mjs'] };

/** A relative specifier as the repository path of the source file it names (`.js` → `.ts`). */
function resolveRelative(file, specifier, exists) {
  const path = posix.normalize(posix.join(posix.dirname(file), specifier));
  for (const [ext, sources] of Object.entries(SOURCE_OF)) {
    if (path.endsWith(ext)) {
      for (const source of sources) {
        const candidate = path.slice(0, -ext.length) + source;
        if (exists(candidate)) return candidate;
      }
    }
  }
  return path;
}

/**
 * The imports of one file: static imports and re-exports (`type` ones marked), side-effect imports
 * and `import()` calls. Comments are removed first, so a specifier quoted in prose does not count.
 */
export function importsOf(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found = [];
  const statement = /(?:^|[;\n])\s*(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*(['"])([^'"]+)\4/g;
  for (const m of code.matchAll(statement)) found.push({ specifier: m[5], typeOnly: Boolean(m[2]) });
  for (const m of code.matchAll(/(?:^|[;\n])\s*import\s*(['"])([^'"]+)\1/g)) {
    found.push({ specifier: m[2], typeOnly: false });
  }
  for (const m of code.matchAll(/\bimport\s*\(\s*(['"])([^'"]+)\1\s*\)/g)) {
    found.push({ specifier: m[2], typeOnly: false, dynamic: true });
  }
  return found;
}

/** What the deploy package bundles (tools/package.ts). */
const BUNDLED = /^(shared|functions)\//;

/** The violations of one file (`file` is its repository path with `/` separators). */
export function checkFile(file, text, exists = () => true) {
  const rule = ruleFor(file);
  if (!rule) return [];
  if (rule.room === 'shared/') return [`${file}: ${rule.why}`];
  const problems = [];
  for (const { specifier, typeOnly, dynamic } of importsOf(text)) {
    const target = specifier.startsWith('.') ? resolveRelative(file, specifier, exists) : packageOf(specifier);
    if (target === file) continue;
    if (dynamic && BUNDLED.test(file) && !specifier.startsWith('.') && !specifier.startsWith('node:')) {
      // esbuild's chunk for `import('<CommonJS package>')` exports only `default`: `{ Pool }` would be undefined.
      problems.push(
        `${file}: import('${specifier}'): load a package lazily through a module of the app that imports it statically (shared/partner-center/undici.ts)`,
      );
      continue;
    }
    const denied = (rule.deny ?? []).some((entry) => matches(target, entry));
    const allowed = !denied && rule.allow.some((entry) => matches(target, entry));
    const allowedAsType = !denied && typeOnly && (rule.typeOnly ?? []).some((entry) => matches(target, entry));
    if (allowed || allowedAsType) continue;
    const hint = (rule.typeOnly ?? []).some((entry) => matches(target, entry))
      ? ' (allowed as `import type` only)'
      : '';
    const room = Array.isArray(rule.room) ? 'the composition root' : rule.room;
    problems.push(`${file}: imports ${specifier}${hint}; ${room} is ${rule.why}`);
  }
  return problems;
}

function walk(root, dir, files) {
  for (const name of readdirSync(join(root, dir))) {
    const path = posix.join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(join(root, path)).isDirectory()) walk(root, path, files);
    else if (SOURCE.test(name) && !name.endsWith('.d.mts') && !name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

/** Every violation in the repository at `root`. */
export function checkRepository(root) {
  const exists = (path) => {
    try {
      return statSync(join(root, path)).isFile();
    } catch {
      return false;
    }
  };
  return SCANNED.flatMap((dir) => walk(root, dir, [])).flatMap((file) =>
    checkFile(file, readFileSync(join(root, file), 'utf8'), exists),
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = relative(process.cwd(), join(dirname(fileURLToPath(import.meta.url)), '..')) || '.';
  const problems = checkRepository(root);
  if (problems.length > 0) {
    process.stderr.write(`Import rules (docs/architecture.md) broken:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write('import rules OK\n');
}
