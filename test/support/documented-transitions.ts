/**
 * The status/substatus transition table of the API (docs/partner-center-api.md#status-and-substatus-transitions),
 * written out by hand. Tests of the app's rules and of
 * the sandbox both check against this copy, never against each other's code.
 */

/** The valid (status, substatus) pairs. */
export const VALID_PAIRS = [
  'New/Pending',
  'New/Received',
  'Active/Accepted',
  'Closed/Won',
  'Closed/Lost',
  'Closed/Declined',
  'Closed/Expired',
] as const;

/**
 * Every allowed move between valid pairs, as `from>to`: New → New|Active|Closed, Active → Active|Closed,
 * and nothing out of Closed (the FAQ overrides the table's Closed → Closed row).
 */
export const ALLOWED_MOVES: ReadonlySet<string> = new Set([
  'New/Pending>New/Pending',
  'New/Pending>New/Received',
  'New/Received>New/Pending',
  'New/Received>New/Received',
  ...['New/Pending', 'New/Received', 'Active/Accepted'].flatMap((from) =>
    ['Active/Accepted', 'Closed/Won', 'Closed/Lost', 'Closed/Declined', 'Closed/Expired'].map((to) => `${from}>${to}`),
  ),
]);
