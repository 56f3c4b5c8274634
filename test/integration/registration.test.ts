/**
 * The built entry points, loaded in plain Node (not vitest, which hides ESM/CommonJS interop mistakes),
 * register exactly the expected functions, the way the Functions worker sees them.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { isolatedEnv, REPO_ROOT, startHostProcess } from '../support/stack.js';

const run = promisify(execFile);

it('registers exactly the expected functions: HTTP with their routes, methods and auth levels, timers with their schedules, queue triggers with their queues', async () => {
  const script = `
    const { loadApp } = await import('./dist/dev/host/host.js');
    const app = await loadApp(process.cwd());
    console.log(JSON.stringify({ main: app.main, entryPoints: app.entryPoints,
      functions: app.functions.map(({ name, methods, authLevel, route }) => ({ name, methods, authLevel, route })),
      timers: app.timers.map(({ name, schedule }) => ({ name, schedule })),
      queues: app.queues.map(({ name, queueName }) => ({ name, queueName })) }));`;
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
      'dist/functions/referral-update-dead-letters.js',
      'dist/functions/referral-update-events.js',
      'dist/functions/referral-update-reconciler.js',
      'dist/functions/referral-update-status.js',
      'dist/functions/referral-update-worker.js',
      'dist/functions/referral-updates.js',
      'dist/functions/refresh-token-keep-alive.js',
      'dist/functions/stages.js',
    ],
    functions: [
      { name: 'app-user-authorize', methods: ['POST'], authLevel: 'admin', route: 'app-user/authorize' },
      { name: 'app-user-redeem', methods: ['POST'], authLevel: 'admin', route: 'app-user/redeem' },
      { name: 'health', methods: ['GET'], authLevel: 'anonymous', route: 'health' },
      { name: 'openapi', methods: ['GET'], authLevel: 'anonymous', route: 'openapi.json' },
      { name: 'referral-update-events', methods: ['GET'], authLevel: 'function', route: 'referral-updates/events' },
      {
        name: 'referral-update-event',
        methods: ['GET'],
        authLevel: 'function',
        route: 'referral-updates/events/{eventId}',
      },
      {
        name: 'referral-update-replay',
        methods: ['POST'],
        authLevel: 'function',
        route: 'referral-updates/events/{eventId}/replay',
      },
      {
        name: 'referral-update-status',
        methods: ['GET'],
        authLevel: 'anonymous',
        route: 'referral-updates/status/{statusId}',
      },
      { name: 'referral-updates', methods: ['POST'], authLevel: 'function', route: 'referral-updates' },
      // function level: the connection's host key opens it (the connector's Stage dropdown).
      { name: 'stages', methods: ['GET'], authLevel: 'function', route: 'stages' },
    ],
    // Unset REFRESH_TOKEN_RENEWAL_SCHEDULE: the default itself, since the host cannot resolve an unset %SETTING%.
    timers: [
      { name: 'referral-update-reconciler', schedule: '0 */5 * * * *' },
      { name: 'refresh-token-keep-alive', schedule: '0 0 */12 * * *' },
    ],
    // ASYNC_QUEUE_NAME unset: the default queue, and the host's poison queue beside it.
    queues: [
      { name: 'referral-update-dead-letters', queueName: 'referral-updates-poison' },
      { name: 'referral-update-worker', queueName: 'referral-updates' },
    ],
  });
});

it('the local host runs a timer on the schedule of its %SETTING%; in managed-identity mode the keep-alive says once that it does nothing', async () => {
  const app = await startHostProcess({ REFRESH_TOKEN_RENEWAL_SCHEDULE: '*/1 * * * * *' });
  try {
    await app.host.waitFor(/(refresh-token-keep-alive information: Executing \(Reason='Timer fired at .*){3}/s, 10_000);
    const output = app.host.output();
    expect(output.match(/REFRESH_TOKEN_RENEWAL_NOT_NEEDED/g)).toHaveLength(1);
    expect(output).not.toMatch(/REFRESH_TOKEN_RENEWAL_FAILED|handler threw/);
    // And on demand, as the Functions host runs a non-HTTP function.
    const run = await fetch(`${app.hostUrl}/admin/functions/refresh-token-keep-alive`, { method: 'POST', body: '{}' });
    expect(run.status).toBe(202);
    await app.host.waitFor(/Reason='This function was programmatically called'/);
    expect((await fetch(`${app.hostUrl}/admin/functions/no-such-function`, { method: 'POST' })).status).toBe(404);
  } finally {
    await app.host.stop();
  }
});

it('loads every built entry point in plain Node without the worker (no ESM named-import failures)', async () => {
  const script = `for (const f of ['app-user-consent', 'health', 'openapi', 'referral-update-dead-letters', 'referral-update-events', 'referral-update-reconciler', 'referral-update-status', 'referral-update-worker', 'referral-updates', 'refresh-token-keep-alive']) await import('./dist/functions/' + f + '.js'); console.log('loaded');`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    env: isolatedEnv(),
  });
  expect(stdout.trim()).toBe('loaded');
});

it('runs on the Node line Azure Functions deploys (22)', () => {
  expect(process.version).toMatch(/^v22\./);
});

it('the local host refuses a route under admin/, as the Functions host does (its own API owns that prefix)', async () => {
  // Inside the repository, so the app resolves @azure/functions from node_modules like the real one.
  const appDir = join(REPO_ROOT, 'dist', `admin-route-${process.pid}`);
  mkdirSync(appDir, { recursive: true });
  try {
    writeFileSync(join(appDir, 'package.json'), JSON.stringify({ type: 'module', main: 'f.js' }));
    writeFileSync(
      join(appDir, 'f.js'),
      `import { app } from '@azure/functions';
       const handler = async () => ({ status: 200 });
       app.http('under-admin', { methods: ['POST'], authLevel: 'admin', route: 'admin/app-user/redeem', handler });
       app.http('beside-admin', { methods: ['POST'], authLevel: 'admin', route: 'app-user/redeem', handler });`,
    );
    const script = `
      const { loadApp } = await import('./dist/dev/host/host.js');
      const app = await loadApp(${JSON.stringify(appDir)});
      console.log(JSON.stringify({ served: app.functions.map((f) => f.name), refused: app.refused }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      env: isolatedEnv(),
    });
    expect(JSON.parse(stdout)).toEqual({
      served: ['beside-admin'],
      refused: [{ name: 'under-admin', reason: 'The specified route conflicts with one or more built in routes.' }],
    });
  } finally {
    rmSync(appDir, { recursive: true, force: true });
  }
});
