/** The violations a reliability run collects, by category, each with the seed, referral, event and values. */

export type Category =
  | 'lost'
  | 'doubled'
  | 'fieldsLost'
  | 'responses5xx'
  | 'wrongAnswer'
  | 'replayMismatch'
  | 'problemJson'
  | 'noAnswer'
  | 'unresolved';

export type Violate = (category: Category, message: string) => void;

export class Violations {
  /** Every violation, `[category] message`, in the order found. */
  readonly all: string[] = [];
  readonly counts: Record<Category, number> = {
    lost: 0,
    doubled: 0,
    fieldsLost: 0,
    responses5xx: 0,
    wrongAnswer: 0,
    replayMismatch: 0,
    problemJson: 0,
    noAnswer: 0,
    unresolved: 0,
  };
  readonly violate: Violate = (category, message) => {
    this.counts[category]++;
    this.all.push(`[${category}] ${message}`);
  };

  /** The violations of the given categories, in the order found. */
  of(categories: readonly Category[]): string[] {
    return this.all.filter((entry) => categories.some((category) => entry.startsWith(`[${category}] `)));
  }
}
