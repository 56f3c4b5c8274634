/**
 * `npm run bench` (dev/bench/run.ts) with the smallest samples: it writes its report to out/bench/report.md
 * (git-ignored) and measures a package of its own, leaving the tracked docs/performance.md and the deploy
 * package of `npm run package` (out/package/) alone; `--write-docs` is the one way to update the doc.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { isolatedEnv, REPO_ROOT } from '../support/stack.js';

const run = promisify(execFile);

it('writes out/bench/report.md, never the tracked docs/performance.md nor out/package/', async () => {
  const docs = join(REPO_ROOT, 'docs', 'performance.md');
  const report = join(REPO_ROOT, 'out', 'bench', 'report.md');
  const deployZip = join(REPO_ROOT, 'out', 'package', 'partner-center-referral-webhook.zip');
  const before = readFileSync(docs, 'utf8');
  const zipBefore = existsSync(deployZip) ? statSync(deployZip).mtimeMs : undefined;
  const startedAt = Date.now();
  try {
    const { stdout } = await run(process.execPath, ['dist/dev/bench/run.js'], {
      cwd: REPO_ROOT,
      env: isolatedEnv({ BENCH_COLD_RUNS: '1', BENCH_EVENTS: '1' }),
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain('Written to out/bench/report.md');
    expect(stdout).toContain('npm run bench -- --write-docs');
    expect(readFileSync(docs, 'utf8')).toBe(before);
    expect(statSync(report).mtimeMs).toBeGreaterThanOrEqual(startedAt - 1000);
    expect(readFileSync(report, 'utf8')).toMatch(/^# Performance\n/);
    expect(existsSync(deployZip) ? statSync(deployZip).mtimeMs : undefined).toBe(zipBefore);
  } finally {
    // Before the fix the bench rewrote the doc: put it back so the test leaves the worktree as it found it.
    if (readFileSync(docs, 'utf8') !== before) writeFileSync(docs, before);
  }
}, 180_000);
