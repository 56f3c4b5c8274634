/**
 * The plan of a batch: several events for one referral, applied in arrival order against one read of it,
 * written with one PUT (group commit, docs/ordering.md#batches). Pure: the batching step
 * (use-cases/referral-batch.ts) calls it again on every fresh read (after a 412 or an unknown-outcome write).
 *
 * Each event is planned on its own (`planUpdate`: the transition rules, the merge) against the running
 * state, the referral as the events before it in the batch left it; an event the rules refuse is
 * answered its own error and leaves the running state as it was, so the events after it see the same
 * referral as they would if it had been applied alone, one after another. The PUT body is the read
 * referral with every accepted change applied in order (a later change of a path overwrites an earlier one),
 * which is the referral the same events applied one by one would leave.
 */

import type { AdapterError } from './errors.js';
import { isAdapterError } from './errors.js';
import { buildPutBody, type Change, type PatchOperation, patchOperations } from './merge.js';
import { planUpdate } from './plan-update.js';
import { type JsonObject, type JsonValue, readPath } from './referral.js';
import type { UpdateIntent } from './update.js';

/** What one event of the batch comes to against the running state. */
export type BatchEventPlan =
  | { kind: 'unchanged' }
  | { kind: 'changed'; changes: Change[] }
  /** The rules refused it (422 transition_not_allowed/referral_closed, 502 unexpected_referral). */
  | { kind: 'refused'; error: AdapterError };

export interface BatchPlan {
  /** One entry per event, in the order given. */
  events: BatchEventPlan[];
  /** The one PUT body; undefined when no event changes anything. */
  body: JsonObject | undefined;
  /** The same write as one JSON Patch document (PATCH); empty when no event changes anything. */
  operations: PatchOperation[];
  /** The referral as the batch leaves it (the body, or the read referral when nothing is written). */
  final: JsonObject;
}

/** Plans `intents`, in order, against `referral` (one read of it). Throws only what is not an `AdapterError`. */
export function planBatch(referralId: string, referral: JsonObject, intents: readonly UpdateIntent[]): BatchPlan {
  let running = referral;
  const accepted: Change[] = [];
  const events = intents.map((intent): BatchEventPlan => {
    try {
      const plan = planUpdate(referralId, running, intent);
      if (plan.kind === 'unchanged') return { kind: 'unchanged' };
      accepted.push(...plan.changes);
      running = plan.body;
      return { kind: 'changed', changes: plan.changes };
    } catch (error) {
      if (isAdapterError(error)) return { kind: 'refused', error };
      throw error;
    }
  });
  if (accepted.length === 0) return { events, body: undefined, operations: [], final: referral };
  const body = buildPutBody(referral, accepted);
  return { events, body, operations: patchOperations(referral, accepted), final: body };
}

/**
 * Whether `referral` holds every value the batch's PUT wrote (a re-read after a PUT whose outcome was
 * unknown): then that PUT landed, and its plan is the answer. Closing dates compare as instants.
 */
export function batchHolds(referral: JsonObject, plan: BatchPlan): boolean {
  for (const event of plan.events) {
    if (event.kind !== 'changed') continue;
    for (const { path } of event.changes) {
      const keys = path.slice(1).split('/');
      if (!sameAt(readPath(referral, keys), readPath(plan.final, keys))) return false;
    }
  }
  return true;
}

function sameAt(held: JsonValue | undefined, written: JsonValue | undefined): boolean {
  if (held === written) return true;
  if (typeof held !== 'string' || typeof written !== 'string') return false;
  const a = Date.parse(held);
  return DATE_TIME.test(held) && DATE_TIME.test(written) && !Number.isNaN(a) && a === Date.parse(written);
}

/** An ISO 8601 date-time, as Partner Center writes `closingDateTime`. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T/;
