/**
 * Status/substatus transition rules (docs/partner-center-api.md#status-and-substatus-transitions).
 * Pure functions, no I/O.
 *
 * | Status | Allowed status transition | Allowed substatus            |
 * |--------|---------------------------|------------------------------|
 * | New    | New, Active, Closed       | Pending, Received            |
 * | Active | Active, Closed            | Accepted                     |
 * | Closed | (terminal, per the FAQ)   | Won, Lost, Declined, Expired |
 */

import { AdapterError } from './errors.js';
import {
  type JsonObject,
  knownState,
  type ReferralState,
  type Status,
  SUBSTATUSES_BY_STATUS,
  type Substatus,
} from './referral.js';
import type { UpdateIntent } from './update.js';

/** Statuses each status may move to. Closed → Closed is in the table but the FAQ makes Closed terminal. */
export const STATUS_MOVES: Readonly<Record<Status, readonly Status[]>> = {
  New: ['New', 'Active', 'Closed'],
  Active: ['Active', 'Closed'],
  Closed: [],
};

/** Every (status, substatus) a referral in `from` may be written to, `from` itself included unless terminal. */
export function allowedTargets(from: ReferralState): ReferralState[] {
  return STATUS_MOVES[from.status].flatMap((status) =>
    SUBSTATUSES_BY_STATUS[status].map((substatus) => ({ status, substatus })),
  );
}

export function isAllowedTransition(from: ReferralState, to: ReferralState): boolean {
  return allowedTargets(from).some((t) => t.status === to.status && t.substatus === to.substatus);
}

/** The state the event asks for. `New` alone keeps the current substatus when the referral is New. */
export function requestedState(current: JsonObject, intent: UpdateIntent): Partial<ReferralState> {
  if (!intent.status) return {};
  if (intent.substatus) return { status: intent.status, substatus: intent.substatus };
  const state = knownState(current);
  return state?.status === intent.status ? { ...state } : { status: intent.status };
}

/**
 * Throws when the referral may not be written as requested. Only called when the event changes
 * something: an event whose values the referral already holds succeeds even on a closed referral, so
 * a retried "mark as Won" is not an error.
 */
export function assertWritable(referralId: string, current: JsonObject, requested: Partial<ReferralState>): void {
  const currentState = { status: current.status ?? null, substatus: current.substatus ?? null };
  if (current.status === 'Closed') {
    throw new AdapterError(
      'referral_closed',
      `Referral ${referralId} is Closed/${String(current.substatus)}; a closed referral cannot be changed.`,
      { extensions: { referralId, current: currentState } },
    );
  }
  const from = knownState(current);
  if (!from) {
    throw new AdapterError(
      'transition_not_allowed',
      `Referral ${referralId} is in a state the transition rules do not know (${String(current.status)}/${String(current.substatus)}); the adapter refuses to write it.`,
      { extensions: { referralId, current: currentState, allowedTargets: [] } },
    );
  }
  if (!requested.status) return;
  const to = requested.substatus ? { status: requested.status, substatus: requested.substatus } : undefined;
  if (to && isAllowedTransition(from, to)) return;
  const target = to ? `${to.status}/${to.substatus}` : `${requested.status} (no substatus given)`;
  throw new AdapterError(
    'transition_not_allowed',
    `Referral ${referralId} cannot move from ${from.status}/${from.substatus} to ${target}.`,
    {
      extensions: {
        referralId,
        current: currentState,
        requested: withoutUndefined(requested),
        allowedTargets: allowedTargets(from),
      },
    },
  );
}

function withoutUndefined(state: Partial<ReferralState>): { status?: Status; substatus?: Substatus } {
  return Object.fromEntries(Object.entries(state).filter(([, v]) => v !== undefined));
}
