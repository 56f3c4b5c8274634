/**
 * `npm run bench` (dev/bench/run.ts) with the smallest samples: it writes its report to out/bench/report.md
 * (git-ignored) and measures a package of its own, leaving the tracked docs/performance.md and the deploy
 * package of `npm run package` (out/package/) alone; `--write-docs` is the one way to update the doc. The
 * report starts with the Goals table, one row per figure of issue 13 (its shape is checked, never a timing).
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
      env: isolatedEnv({
        BENCH_COLD_RUNS: '1',
        BENCH_EVENTS: '1',
        BENCH_BURST_RUNS: '1',
        BENCH_THROTTLE_EVENTS: '20',
        BENCH_THROTTLE_REFERRALS: '5',
        BENCH_BACKLOG_EVENTS: '20',
        BENCH_BACKLOG_DELAY_MS: '100',
        BENCH_THROUGHPUT_EVENTS: '16',
        BENCH_THROUGHPUT_RUNS: '1',
        BENCH_MEMORY_EVENTS: '20',
        BENCH_MEMORY_HOLD_MS: '500',
        BENCH_HOST_REQUESTS: '5',
        BENCH_HOST_RUNS: '1',
      }),
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain('Written to out/bench/report.md');
    expect(stdout).toContain('npm run bench -- --write-docs');
    expect(readFileSync(docs, 'utf8')).toBe(before);
    expect(statSync(report).mtimeMs).toBeGreaterThanOrEqual(startedAt - 1000);
    const text = readFileSync(report, 'utf8');
    expect(text).toMatch(/^# Performance\n/);
    expect(text).toContain('BENCH_COLD_RUNS=1');
    // The Goals table first, with the ten figures (and the rows added beside them), each with a baseline,
    // a value, a goal and whether it is met.
    expect(text.indexOf('## Goals')).toBeLessThan(text.indexOf('## Cold start'));
    const goals = text.slice(text.indexOf('## Goals'), text.indexOf('## Cold start'));
    expect(goals).toContain('| figure | baseline (same run) | value | goal | met |');
    const rows = goals.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| figure'));
    expect(rows.length).toBeGreaterThanOrEqual(10);
    for (const figure of [
      'events on one referral',
      'upstream calls per event',
      'events with id, concurrency 16',
      'events without id, concurrency 16',
      'telemetry configured: start → first answer',
      'telemetry configured: CPU per event',
      'deploy package import vs an empty Node process',
      'events in flight vs at rest',
      'requests/s rate limit',
      'local host: CPU per request through the host',
    ]) {
      expect(goals).toContain(figure);
    }
    for (const row of rows) {
      expect(row).not.toContain('failed:');
      expect(row).toMatch(/\| (yes|\*\*no\*\*) \|$/);
    }
    expect(existsSync(deployZip) ? statSync(deployZip).mtimeMs : undefined).toBe(zipBefore);
  } finally {
    // Before the fix the bench rewrote the doc: put it back so the test leaves the worktree as it found it.
    if (readFileSync(docs, 'utf8') !== before) writeFileSync(docs, before);
  }
}, 180_000);
