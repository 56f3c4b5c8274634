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
import { type Change, type PatchOperation, withPatchOperations } from './merge.js';
import {
  decideOrder,
  fieldsOf,
  type OrderedField,
  type OrderingRecord,
  type Superseded,
  withoutFields,
} from './ordering.js';
import { planUpdate } from './plan-update.js';
import { type JsonObject, type JsonValue, readPath } from './referral.js';
import type { UpdateIntent } from './update.js';

/** What one event of the batch comes to against the running state. */
export type BatchEventPlan =
  | { kind: 'unchanged'; superseded: Superseded[] }
  | { kind: 'changed'; changes: Change[]; superseded: Superseded[] }
  /** Every field of the event was set by a later event (ordered batches only): nothing of it is written. */
  | { kind: 'stale'; superseded: Superseded[] }
  /** The rules refused it (422 transition_not_allowed/referral_closed, 502 unexpected_referral). */
  | { kind: 'refused'; error: AdapterError };

export interface BatchPlan {
  /** One entry per event, in the order given. */
  events: BatchEventPlan[];
  /** The one PUT body; undefined when no event changes anything. */
  body: JsonObject | undefined;
  /** The same write as one JSON Patch document (PATCH, built when read); empty when no event changes anything. */
  readonly operations: PatchOperation[];
  /** The referral as the batch leaves it (the body, or the read referral when nothing is written). */
  final: JsonObject;
  /**
   * Ordered batches: each field an event applied, with the `occurredAt` of the latest one that did and its index
   * among the events (the time the batch claims it at, and whose claim it is: docs/ordering.md#batches). Empty for a
   * batch of events without `occurredAt`.
   */
  applied: Map<OrderedField, AppliedField>;
}

/** Whether the batch writes anything: then its `body` (and `operations`) are the write. */
export function writesSomething(plan: BatchPlan): plan is BatchPlan & { body: JsonObject } {
  return plan.body !== undefined;
}

/** A field an ordered batch writes: the time of the latest event that applied it, and that event's index. */
export interface AppliedField {
  at: string;
  event: number;
}

/** One event of an ordered batch: its change and when it happened at the source. */
export interface OrderedIntent {
  intent: UpdateIntent;
  occurredAt: string;
}

/** Plans `intents`, in order, against `referral` (one read of it). Throws only what is not an `AdapterError`. */
export function planBatch(referralId: string, referral: JsonObject, intents: readonly UpdateIntent[]): BatchPlan {
  return plan(referralId, referral, intents, (intent) => ({ intent, superseded: [] }));
}

/**
 * Plans events with `occurredAt`, in arrival order, against `referral` and the ordering record `record` (settled,
 * with no live claim on the events' fields): each event's fields are decided per field against the record as
 * the events before it left it (core/ordering.ts `decideOrder`: a field a later event set is superseded, ties
 * apply), exactly as if the events had been applied one after another; an event the rules refuse moves neither
 * the referral nor the record.
 */
export function planOrderedBatch(
  referralId: string,
  referral: JsonObject,
  record: OrderingRecord,
  events: readonly OrderedIntent[],
): BatchPlan {
  let running = record;
  return plan(referralId, referral, events, ({ intent, occurredAt }, event) => {
    const fields = fieldsOf(intent);
    const decision = decideOrder(running, occurredAt, fields, '');
    // A field under a live claim would be written unclaimed: the caller waits for such claims first.
    if (decision.waitFor.length > 0)
      throw new Error(`planOrderedBatch: ${decision.waitFor.join(', ')} under a live claim`);
    const skipped = decision.superseded.map((s) => s.field);
    return {
      intent: skipped.length === 0 ? intent : withoutFields(intent, skipped),
      superseded: decision.superseded,
      // An event naming no field (a stage mapped to no status) is not stale: it has nothing to order.
      ...(fields.length > 0 && decision.apply.length === 0 ? { stale: true } : {}),
      applied: () => {
        running = { ...running };
        for (const field of decision.apply) running[field] = { at: occurredAt };
        return decision.apply.map((field) => [field, { at: occurredAt, event }] as const);
      },
    };
  });
}

/** What the ordering decided for one event before it is planned: the intent left, and how it moves the record. */
interface Decided {
  intent: UpdateIntent;
  superseded: Superseded[];
  stale?: true;
  /** The event was accepted: moves the running record, returns the fields it applied with their times. */
  applied?: () => ReadonlyArray<readonly [OrderedField, AppliedField]>;
}

function plan<T>(
  referralId: string,
  referral: JsonObject,
  inputs: readonly T[],
  decide: (input: T, index: number) => Decided,
): BatchPlan {
  let running = referral;
  const accepted: Change[] = [];
  const applied = new Map<OrderedField, AppliedField>();
  const events = inputs.map((input, index): BatchEventPlan => {
    const { intent, superseded, stale, applied: apply } = decide(input, index);
    if (stale) return { kind: 'stale', superseded };
    try {
      const planned = planUpdate(referralId, running, intent);
      for (const [field, at] of apply?.() ?? []) applied.set(field, at);
      if (planned.kind === 'unchanged') return { kind: 'unchanged', superseded };
      accepted.push(...planned.changes);
      running = planned.body;
      return { kind: 'changed', changes: planned.changes, superseded };
    } catch (error) {
      if (isAdapterError(error)) return { kind: 'refused', error };
      throw error;
    }
  });
  if (accepted.length === 0) return { events, body: undefined, operations: [], final: referral, applied };
  // The running referral is the read one with every accepted change applied in order: the batch's PUT body.
  return withPatchOperations({ events, body: running, final: running, applied }, referral, accepted);
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
