import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkFile, checkRepository, importsOf } from '../../scripts/check-imports.mjs';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('import rules (docs/architecture.md)', () => {
  it('hold over the whole repository', () => {
    expect(checkRepository(REPO_ROOT)).toEqual([]);
  });

  it('keep the core pure: no zod, no node built-in, nothing outside core/', () => {
    const text = [
      "import { z } from 'zod';",
      "import { createHash } from 'node:crypto';",
      "import type { Config } from '../config.js';",
      "import { STATUSES } from './referral.js';",
    ].join('\n');
    expect(checkFile('shared/core/merge.ts', text)).toEqual([
      expect.stringContaining('imports zod'),
      expect.stringContaining('imports node:crypto'),
      expect.stringContaining('imports ../config.js'),
    ]);
  });

  it('let the use cases reach the edges only through `import type`', () => {
    expect(
      checkFile('shared/use-cases/x.ts', "import type { TableStore } from '../idempotency/table-store.js';"),
    ).toEqual([]);
    expect(
      checkFile('shared/use-cases/x.ts', "import { createTableStore } from '../idempotency/table-store.js';"),
    ).toEqual([expect.stringContaining('allowed as `import type` only')]);
    expect(
      checkFile('shared/use-cases/x.ts', "const { TableClient } = await import('@azure/data-tables');"),
    ).toHaveLength(1);
  });

  it('let the contract take OpenAPI types from openapi3-ts, as types only', () => {
    expect(checkFile('shared/contract/openapi.ts', "import type { OpenAPIObject } from 'openapi3-ts/oas31';")).toEqual(
      [],
    );
    expect(checkFile('shared/contract/openapi.ts', "import { OpenApiBuilder } from 'openapi3-ts/oas31';")).toEqual([
      expect.stringContaining('allowed as `import type` only'),
    ]);
  });

  it('load packages lazily in the bundled app only through a module of its own (esbuild CommonJS interop)', () => {
    expect(
      checkFile('shared/idempotency/table-store.ts', "const { TableClient } = await import('./data-tables.js');"),
    ).toEqual([]);
    expect(checkFile('shared/partner-center/client.ts', "const { Pool } = await import('undici');")).toEqual([
      expect.stringContaining("import('undici'): load a package lazily through a module of the app"),
    ]);
    expect(checkFile('dev/host/host.ts', "const { Pool } = await import('undici');")).toEqual([]);
  });

  it('keep shared/ out of functions/, dev/, tools/ and test/, and the sandbox and emulators out of the app', () => {
    for (const target of [
      '../functions/health.js',
      '../dev/start.js',
      '../tools/package.js',
      '../test/support/stack.js',
    ]) {
      expect(checkFile('shared/runtime.ts', `import { x } from '${target}';`), target).toHaveLength(1);
    }
    expect(
      checkFile('dev/sandbox/handlers.ts', "import { STATUSES } from '../../shared/core/referral.js';"),
    ).toHaveLength(1);
    expect(checkFile('dev/emulators/entra.ts', "import { x } from '../../shared/auth/entra.js';")).toHaveLength(1);
    expect(checkFile('tools/package.ts', "import { x } from '../dev/bench/cold-start.js';")).toHaveLength(1);
  });

  it('put every file of shared/ in a room, and ignore specifiers quoted in comments', () => {
    expect(checkFile('shared/stray.ts', 'export const x = 1;')).toEqual([
      expect.stringContaining('outside every room'),
    ]);
    expect(importsOf("/** see import('zod') */\n// import { z } from 'zod';\nexport const x = 1;")).toEqual([]);
    expect(importsOf("export type { A } from './a.js';\nimport './side-effect.js';")).toEqual([
      { specifier: './a.js', typeOnly: true },
      { specifier: './side-effect.js', typeOnly: false },
    ]);
  });
});
