/**
 * What one update event asks for and what applying it answers, in Partner Center terms: the types the
 * rules, the use cases and the wire contract share. The contract (contract/update-event.ts) produces an
 * `UpdateEvent` from the request; the use case answers an `UpdateResult`. See docs/partner-center-api.md.
 */
import type { Change, PatchOperation } from './merge.js';
import type { JsonObject, JsonValue, Status, Substatus } from './referral.js';

/** The change an event asks for, in Partner Center terms. Absent keys are left alone. */
export interface UpdateIntent {
  status?: Status;
  /** Undefined with `status: 'New'` alone: the current New substatus is kept (see transitions). */
  substatus?: Substatus;
  statusReason?: string;
  dealValue?: number;
  currency?: string;
  closingDateTime?: string;
  notes?: string;
  name?: string;
  externalReferenceId?: string;
}

export interface UpdateEvent {
  referralId: string;
  eventId: string | undefined;
  /**
   * When the change happened at the source (UTC ISO 8601). Ordering is per field: a field a later event
   * set is skipped (docs/ordering.md).
   */
  occurredAt: string | undefined;
  dryRun: boolean;
  intent: UpdateIntent;
  /** The event named a CRM stage (`stage`): which one, and what STAGE_MAP mapped it to (already in `intent`). */
  stage?: StageMapping;
}

/** A CRM stage and its target: `Closed/Won`, `New` (the current New substatus kept), or null (no status change). */
export interface StageMapping {
  /** The stage as STAGE_MAP spells it. */
  name: string;
  target: string | null;
}

/** `stale`: every field of the event was set by a later event (by `occurredAt`); nothing was written. */
export type Outcome = 'updated' | 'unchanged' | 'dry-run' | 'stale';

/** The 200 answer (contract v1). */
export interface UpdateResult {
  referralId: string;
  eventId?: string;
  outcome: Outcome;
  status: JsonValue;
  substatus: JsonValue;
  eTag: string | null;
  changes: Change[];
  /** Dry runs only: the request that would have been sent, or null when nothing would change. */
  wouldPut?: { ifMatch: string; body: JsonObject } | null;
  /** Dry runs with `PARTNER_CENTER_WRITE_METHOD=patch`, in place of `wouldPut`: the JSON Patch it would send. */
  wouldPatch?: { ifMatch: string; operations: PatchOperation[] } | null;
  /** Stale events only: the latest `occurredAt` among the later events that set the event's fields. */
  lastAppliedOccurredAt?: string;
  /** The event's fields a later event set (skipped), each with that event's `occurredAt`; absent when none. */
  superseded?: Array<{ path: string; occurredAt: string }>;
  /** Events with a `stage` only: the stage and what it mapped to. */
  stage?: StageMapping;
}
