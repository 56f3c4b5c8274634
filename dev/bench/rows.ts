/** One row of the bench report: a figure, the baseline it is a ratio against (measured in the same run), and its goal. */
export interface BenchRow {
  figure: string;
  baseline: string;
  value: string;
  goal: string;
  met: boolean;
}
