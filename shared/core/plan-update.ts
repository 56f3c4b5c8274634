/**
 * The decision for one read of the referral: what would change, whether the rules allow it, and the
 * exact PUT body (or JSON Patch document). Pure: the update loop calls it again on every fresh read (after a 412 or an
 * unknown-outcome write), so the intent is always re-applied to the current resource, never to a stale one.
 */

import { buildPutBody, type Change, desiredValues, diff, type PatchOperation, withPatchOperations } from './merge.js';
import type { JsonObject } from './referral.js';
import { assertWritable, requestedState } from './transitions.js';
import type { UpdateIntent } from './update.js';

/** `body` is the PUT body, `operations` the same write as a JSON Patch document for PATCH (built when read). */
export type UpdatePlan =
  | { kind: 'unchanged' }
  | { kind: 'write'; changes: Change[]; body: JsonObject; readonly operations: PatchOperation[] };

export function planUpdate(referralId: string, referral: JsonObject, intent: UpdateIntent): UpdatePlan {
  const requested = requestedState(referral, intent);
  const changes = diff(referralId, referral, desiredValues(intent, requested));
  if (changes.length === 0) return { kind: 'unchanged' };
  assertWritable(referralId, referral, requested);
  return withPatchOperations(
    { kind: 'write' as const, changes, body: buildPutBody(referral, changes) },
    referral,
    changes,
  );
}
