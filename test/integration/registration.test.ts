/**
 * The built entry points, loaded in plain Node (not vitest, which hides ESM/CommonJS interop mistakes),
 * register exactly the expected functions, the way the Functions worker sees them.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { isolatedEnv, REPO_ROOT } from '../support/stack.js';

const run = promisify(execFile);

it('registers exactly the expected HTTP functions with their routes, methods and auth levels', async () => {
  const script = `
    const { loadApp } = await import('./dist/dev/host/host.js');
    const app = await loadApp(process.cwd());
    console.log(JSON.stringify({ main: app.main, entryPoints: app.entryPoints,
      functions: app.functions.map(({ name, methods, authLevel, route }) => ({ name, methods, authLevel, route })) }));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    env: isolatedEnv(),
  });
  expect(JSON.parse(stdout)).toEqual({
    main: 'dist/functions/*.js',
    entryPoints: [
      'dist/functions/app-user-consent.js',
      'dist/functions/health.js',
      'dist/functions/openapi.js',
      'dist/functions/referral-updates.js',
    ],
    functions: [
      { name: 'app-user-authorize', methods: ['POST'], authLevel: 'admin', route: 'app-user/authorize' },
      { name: 'app-user-redeem', methods: ['POST'], authLevel: 'admin', route: 'app-user/redeem' },
      { name: 'health', methods: ['GET'], authLevel: 'anonymous', route: 'health' },
      { name: 'openapi', methods: ['GET'], authLevel: 'anonymous', route: 'openapi.json' },
      { name: 'referral-updates', methods: ['POST'], authLevel: 'function', route: 'referral-updates' },
    ],
  });
});

it('loads every built entry point in plain Node without the worker (no ESM named-import failures)', async () => {
  const script = `for (const f of ['app-user-consent', 'health', 'openapi', 'referral-updates']) await import('./dist/functions/' + f + '.js'); console.log('loaded');`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    env: isolatedEnv(),
  });
  expect(stdout.trim()).toBe('loaded');
});

it('runs on the Node line Azure Functions deploys (22)', () => {
  expect(process.version).toMatch(/^v22\./);
});
