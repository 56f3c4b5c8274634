/**
 * What the report scripts (reliability-report.mjs, async-report.mjs) share: reading a suite's figures and
 * writing them as Markdown that the formatter leaves as it is.
 */
import { readFileSync } from 'node:fs';

/** Stops the script with a message naming it. */
export function failer(script) {
  return (message) => {
    process.stderr.write(`${script}: ${message}\n`);
    process.exit(1);
  };
}

/** A JSON file of figures, or `fail` with what went wrong and `what` to name it. */
export function readJsonOr(fail, file, what) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    fail(`cannot read ${what}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export const n = (value) => (typeof value === 'number' ? value.toLocaleString('en-US') : String(value ?? '–'));
export const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
export const verdict = (count) => (count === 0 ? '0 ✓' : `**${n(count)} ✗**`);

/** A Markdown table with padded columns (stable under the formatter). */
export function table(header, rows) {
  const all = [header, ...rows].map((row) => row.map((cell) => String(cell)));
  const widths = header.map((_, i) => Math.max(3, ...all.map((row) => [...row[i]].length)));
  const line = (row) => `| ${row.map((cell, i) => cell + ' '.repeat(widths[i] - [...cell].length)).join(' | ')} |`;
  return [line(all[0]), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...all.slice(1).map(line)].join('\n');
}
