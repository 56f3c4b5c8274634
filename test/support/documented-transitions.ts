/**
 * The status/substatus transition table of the API reference (update-a-referral, "Status and substatus
 * transition states"; partner-center-referrals §6), written out by hand. Tests of the app's rules and of
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
