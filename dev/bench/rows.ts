/** One row of `npm run bench`'s report: a figure, its baseline from the same run, and its goal (docs/performance.md). */
export interface BenchRow {
  figure: string;
  baseline: string;
  value: string;
  /** value ÷ baseline, when both are numbers. */
  ratio?: string;
  goal: string;
  met: boolean;
}

/** A BENCH_* size from the environment: a positive number, rounded unless `integer` is false; else `fallback`. */
export function benchSetting(name: string, fallback: number, integer = true): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) return fallback;
  return integer ? Math.round(value) : value;
}
