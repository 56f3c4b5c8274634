/**
 * `npm start` as a user runs it: no Partner Center URL, no identity variables. The embedded sandbox and
 * identity endpoint come up, and the printed curl command works exactly as printed.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { isolatedEnv, REPO_ROOT, type StartedProcess, startProcess } from '../support/stack.js';

const run = promisify(execFile);
const started: StartedProcess[] = [];
afterAll(async () => {
  for (const process of started) await process.stop();
});

/** The README's first curl (Contract v1) and the 200 example it documents. */
function readmeExample(): { curl: string; answer: Record<string, unknown> } {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const curl = /```sh\n(curl [^`]+?)\n```/.exec(readme)?.[1];
  const answer = /### 200: success[\s\S]*?```json\n([\s\S]+?)\n```/.exec(readme)?.[1];
  if (!curl || !answer) throw new Error('README.md: no curl example, or no 200 example after it');
  return { curl, answer: JSON.parse(answer) as Record<string, unknown> };
}

describe('npm start', () => {
  it("serves the app on the embedded sandbox; the README's curl, then the printed one, answer as documented", async () => {
    const app = startProcess(['dist/dev/start.js'], isolatedEnv({ PORT: '0', AzureWebJobsStorage: '' }));
    started.push(app);
    await app.waitFor(/Press Ctrl\+C/);
    expect(app.output()).toContain('embedded Partner Center SANDBOX');
    expect(app.output()).toContain('Started Azurite (Table and Queue services, in memory)');
    const [, hostUrl] = app.output().match(/(http:\/\/127\.0\.0\.1:\d+)\/api\//) ?? [];

    // A new user reads the README first: its curl (on the port npm start took) answers its 200 example.
    const readme = readmeExample();
    expect(readme.curl).toContain('http://127.0.0.1:7071/api/referral-updates');
    const documented = JSON.parse(
      (await run('sh', ['-c', readme.curl.replace('http://127.0.0.1:7071', hostUrl as string)])).stdout,
    );
    expect(documented).toEqual({ ...readme.answer, eTag: expect.any(String) });

    // Then the curl npm start printed: its referral is still open.
    const [curl] = await app.waitFor(/curl -sS [^\n]+/);
    expect(curl).toContain(SEED_IDS.newReceived);
    const { stdout } = await run('sh', ['-c', curl]);
    expect(JSON.parse(stdout)).toMatchObject({
      referralId: SEED_IDS.newReceived,
      outcome: 'updated',
      status: 'Active',
      substatus: 'Accepted',
      changes: [
        { path: '/status', from: 'New', to: 'Active' },
        { path: '/substatus', from: 'Received', to: 'Accepted' },
      ],
    });
    // The error table names every field a problem carries beyond the six of every problem.
    const table = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const extraFieldsOf = (code: string) =>
      table
        .split('\n')
        .find((line) => line.includes(`| \`${code}\``))
        ?.split('|')[5] ?? '';
    for (const [body, code, absent] of [
      [{ referralId: 'no-such-referral', status: 'Active' }, 'referral_not_found', []],
      [
        { referralId: SEED_IDS.unknownState, status: 'Closed', substatus: 'Won' },
        'transition_not_allowed',
        ['requested'],
      ],
    ] as const) {
      const answer = await fetch(`${hostUrl}/api/referral-updates`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const problem = (await answer.json()) as Record<string, unknown>;
      expect(problem.code).toBe(code);
      const standard = ['type', 'title', 'status', 'detail', 'code', 'retryable'];
      for (const field of Object.keys(problem).filter((key) => !standard.includes(key))) {
        expect(extraFieldsOf(code), `${code}: ${field}`).toContain(`\`${field}\``);
      }
      for (const field of absent) expect(problem).not.toHaveProperty(field);
    }

    // Run again: the same event is now a no-op, not an error and not a second write.
    const again = JSON.parse((await run('sh', ['-c', curl])).stdout);
    expect(again).toMatchObject({ outcome: 'unchanged', changes: [] });

    // The README's asynchronous example, as written: a 202 whose Location, polled, ends in the synchronous
    // answer with its state (the referral already holds Won from the first curl: unchanged).
    const asyncExample = /### Asynchronous delivery[\s\S]*?```sh\n([\s\S]+?)\n```/.exec(table)?.[1];
    expect(asyncExample).toContain("-H 'Prefer: respond-async'");
    const workDir = mkdtempSync(join(tmpdir(), 'readme-async-'));
    try {
      const script = (asyncExample as string).replaceAll('http://127.0.0.1:7071', hostUrl as string);
      const polled = JSON.parse((await run('sh', ['-c', script], { cwd: workDir })).stdout);
      expect(polled).toMatchObject({ referralId: readme.answer.referralId, state: 'succeeded', outcome: 'unchanged' });
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
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
