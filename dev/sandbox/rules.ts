/**
 * The sandbox's own reading of the status/substatus transition table
 * (docs/partner-center-api.md#status-and-substatus-transitions). Written from that
 * page, independently of the app, so the two can disagree visibly.
 */

export const REFERRAL_STATUSES = ['New', 'Active', 'Closed'] as const;
export type ReferralStatus = (typeof REFERRAL_STATUSES)[number];

/** Column 3 of the table: the substatuses valid for each status. */
export const SUBSTATUSES_BY_STATUS: { readonly [S in ReferralStatus]: readonly string[] } = {
  New: ['Pending', 'Received'],
  Active: ['Accepted'],
  Closed: ['Won', 'Lost', 'Declined', 'Expired'],
};

/**
 * Column 2 of the table: the statuses a referral may move to. The table's
 * "Closed → Closed" row is overridden by the FAQ ("You can't edit a deal after
 * it has been placed in a terminal state"), so Closed allows no move at all.
 */
export const ALLOWED_MOVES: { readonly [S in ReferralStatus]: readonly ReferralStatus[] } = {
  New: ['New', 'Active', 'Closed'],
  Active: ['Active', 'Closed'],
  Closed: [],
};

export interface ReferralState {
  status: unknown;
  substatus: unknown;
}

export type TransitionVerdict =
  | { allowed: true }
  | { allowed: false; reason: 'closed' | 'unknown-current' | 'invalid-target' | 'not-allowed'; message: string };

/** Exact, case-sensitive match: only the canonical casing (docs/partner-center-api.md#status-and-substatus-values). */
export function asStatus(value: unknown): ReferralStatus | undefined {
  return REFERRAL_STATUSES.find((status) => status === value);
}

/** True for the pairs New/Pending|Received, Active/Accepted, Closed/Won|Lost|Declined|Expired. */
export function isValidState(state: ReferralState): boolean {
  const status = asStatus(state.status);
  return status !== undefined && SUBSTATUSES_BY_STATUS[status].some((sub) => sub === state.substatus);
}

export function describeState(state: ReferralState): string {
  return `${String(state.status)}/${String(state.substatus)}`;
}

/** Decides whether a write may move a referral from `from` to `to`. */
export function checkTransition(from: ReferralState, to: ReferralState): TransitionVerdict {
  // Closed is terminal whatever its substatus (FAQ; the Sample flow also skips Closed referrals).
  if (from.status === 'Closed') {
    return {
      allowed: false,
      reason: 'closed',
      message: `The referral is closed (${describeState(from)}); a referral in a terminal state can't be updated.`,
    };
  }
  const current = asStatus(from.status);
  if (current === undefined || !isValidState(from)) {
    // Unknown current state (e.g. an `Error` substatus): refuse rather than guess
    // (docs/partner-center-api.md#status-and-substatus-transitions).
    return {
      allowed: false,
      reason: 'unknown-current',
      message: `The referral's current state ${describeState(from)} is not one the transition table knows; it can't be updated.`,
    };
  }
  const target = asStatus(to.status);
  if (target === undefined || !isValidState(to)) {
    return {
      allowed: false,
      reason: 'invalid-target',
      message: `${describeState(to)} is not a valid status/substatus pair. Valid pairs: New/Pending, New/Received, Active/Accepted, Closed/Won, Closed/Lost, Closed/Declined, Closed/Expired.`,
    };
  }
  if (!ALLOWED_MOVES[current].includes(target)) {
    return {
      allowed: false,
      reason: 'not-allowed',
      message: `A referral can't move from ${describeState(from)} to ${describeState(to)}; status ${current} may only move to ${ALLOWED_MOVES[current].join(', ')}.`,
    };
  }
  return { allowed: true };
}
