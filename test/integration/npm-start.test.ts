/**
 * `npm start` as a user runs it: no Partner Center URL, no identity variables. The embedded sandbox and
 * identity endpoint come up, and the printed curl command works exactly as printed.
 */
import { execFile } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { isolatedEnv, type StartedProcess, startProcess } from '../support/stack.js';

const run = promisify(execFile);
const started: StartedProcess[] = [];
afterAll(async () => {
  for (const process of started) await process.stop();
});

describe('npm start', () => {
  it('serves the app on the embedded sandbox and its printed curl moves a referral from New to Active', async () => {
    const app = startProcess(['dist/dev/start.js'], isolatedEnv({ PORT: '0', AzureWebJobsStorage: '' }));
    started.push(app);
    await app.waitFor(/Press Ctrl\+C/);
    expect(app.output()).toContain('embedded Partner Center SANDBOX');
    expect(app.output()).toContain('Started Azurite (Table service, in memory)');
    const [curl] = await app.waitFor(/curl -sS [^\n]+/);
    expect(curl).toContain(SEED_IDS.newPending);

    const { stdout } = await run('sh', ['-c', curl]);
    expect(JSON.parse(stdout)).toMatchObject({
      referralId: SEED_IDS.newPending,
      outcome: 'updated',
      status: 'Active',
      substatus: 'Accepted',
      changes: [
        { path: '/status', from: 'New', to: 'Active' },
        { path: '/substatus', from: 'Pending', to: 'Accepted' },
      ],
    });
    // Run again: the same event is now a no-op, not an error and not a second write.
    const again = JSON.parse((await run('sh', ['-c', curl])).stdout);
    expect(again).toMatchObject({ outcome: 'unchanged', changes: [] });
    await app.stop();
    expect(app.output()).not.toMatch(/loopback guard/);
  });

  it.each(['PORT', 'SANDBOX_PORT'])('a busy %s: says which port and how to change it', async (setting) => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as AddressInfo;
    try {
      const app = startProcess(
        ['dist/dev/start.js'],
        isolatedEnv({ PORT: '0', IDEMPOTENCY_STORE: 'memory', [setting]: String(port) }),
      );
      started.push(app);
      expect(await app.exited).toBe(1);
      expect(app.output()).toContain(`port ${port} on 127.0.0.1 (${setting}, for `);
      expect(app.output()).toContain(`Set ${setting} to a free port: ${setting}=${port + 1} npm start`);
      expect(app.output()).not.toMatch(/^\s+at /m);
    } finally {
      busy.close();
    }
  });

  it('refuses to start with an invalid configuration, saying why', async () => {
    const app = startProcess(
      ['dist/dev/start.js'],
      isolatedEnv({
        PORT: '0',
        PARTNER_CENTER_BASE_URL: 'http://partner.example.test',
        IDENTITY_ENDPOINT: 'http://127.0.0.1:9/msi/token',
        IDENTITY_HEADER: 'x',
      }),
    );
    started.push(app);
    const code = await app.exited;
    expect(code).toBe(1);
    expect(app.output()).toContain('PARTNER_CENTER_BASE_URL must use https');
  });
});
