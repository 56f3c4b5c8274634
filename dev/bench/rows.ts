/** One row of the bench report: a figure, its baseline measured in the same run, its value, the goal. */
export interface BenchRow {
  figure: string;
  baseline: string;
  value: string;
  goal: string;
  met: boolean;
}
