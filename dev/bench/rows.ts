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
