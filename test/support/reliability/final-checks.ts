/**
 * The checks of the reliability run's end (pure, over what drive() returned): the final state against the
 * model and the setup snapshot, the sandbox's ledger of applied writes on values, and every event's outcome.
 */
import { EXTERNAL_EDIT_COUNTER } from '../../../dev/sandbox/server.js';
import { bump } from './answers.js';
import type { Run } from './driver.js';
import {
  adapterFields,
  describeModel,
  differingPaths,
  enc,
  FIELDS,
  holds,
  isRecord,
  sameFields,
  show,
  withoutAdapterFields,
} from './model.js';
import { CALLER_RETRIES, MAX_UNRESOLVED_EVENTS } from './parameters.js';

/** The figures only the end can tell. */
export interface End {
  /** Adapter-written fields whose model still allows more than one value (an unresolved event touched them). */
  unresolvedFields: number;
  /** Events by their first final answer's outcome or code. */
  finalOutcomes: Record<string, number>;
}

/** Checks the run's end, adding to its violations. */
export function checkEnd(run: Run): End {
  const { seed, figures, stats, events, chains, tracks, referralIds, models, snapshots } = run;
  const violate = run.violations.violate;
  let unresolvedFields = 0;
  for (const id of referralIds) {
    const model = models.get(id);
    const snapshot = snapshots.get(id);
    const final = run.finals.get(id);
    if (model === undefined || snapshot === undefined || final === undefined) {
      violate('fieldsLost', `seed ${seed}: referral ${id} is gone`);
      continue;
    }
    const fields = adapterFields(final);
    for (const field of FIELDS) {
      if (model.possible[field].size > 1) unresolvedFields++;
      if (!holds(model, field, fields[field])) {
        violate(
          'lost',
          `seed ${seed}, referral ${id}: ${field} is ${show(fields[field])}, the model has ${describeModel(model, field)}`,
        );
      }
    }
    // Fields the adapter does not write: exactly the snapshot's.
    const edits = stats.externalEdits[id] ?? 0;
    const attributes = isRecord(final.customAttributes) ? final.customAttributes : {};
    const counter = attributes[EXTERNAL_EDIT_COUNTER];
    if ((counter ?? 0) !== edits) {
      violate(
        'fieldsLost',
        `seed ${seed}, referral ${id}: customAttributes.${EXTERNAL_EDIT_COUNTER} is ${show(counter)}, the concurrent writer made ${edits} edits`,
      );
    }
    const lost = differingPaths(withoutAdapterFields(snapshot), withoutAdapterFields(final));
    if (lost.length > 0) {
      violate('fieldsLost', `seed ${seed}, referral ${id}: fields differ from the snapshot: ${lost.join(', ')}`);
    }

    // The ledger, on values: each event's unique values appear at most once; a reused body's never.
    const writes = run.ledgers.get(id) ?? [];
    const last = writes.at(-1);
    if (!sameFields(adapterFields(last === undefined ? snapshot : last.fields), fields)) {
      violate('lost', `seed ${seed}, referral ${id}: the final state is not the last applied write`);
    }
    const ownEvents = events.filter((event) => event.referralId === id && event.unique.length > 0);
    const appearances = new Map<string, number[]>();
    let previous = adapterFields(snapshot);
    for (const write of writes) {
      const stored = adapterFields(write.fields);
      for (const event of ownEvents) {
        const appears = event.unique.some(
          (field) => enc(stored[field]) === enc(event.values[field]) && enc(previous[field]) !== enc(stored[field]),
        );
        if (appears) appearances.set(event.id, [...(appearances.get(event.id) ?? []), write.seq]);
      }
      previous = stored;
    }
    for (const [eventId, seqs] of appearances) {
      if (seqs.length > 1) {
        violate(
          'doubled',
          `seed ${seed}, referral ${id}: event ${eventId} was stored ${seqs.length} times (writes ${seqs.join(', ')})`,
        );
      }
      const track = tracks.get(eventId);
      const answer = track?.original?.body;
      const refused =
        track?.original !== undefined &&
        !(track.original.status === 200 && (answer?.outcome === 'updated' || answer?.outcome === 'unchanged'));
      if (track !== undefined && refused && track.unconfirmed === 0) {
        violate(
          'wrongAnswer',
          `seed ${seed}, referral ${id}: event ${eventId} answered ${track.original?.status} ${track.original?.text} but was stored (write ${seqs.join(', ')})`,
        );
      }
    }
  }
  // Reused bodies' values never reach the store.
  for (const chain of chains) {
    for (const step of chain) {
      if (step.type !== 'reuse') continue;
      const notes = step.altered.values.notes;
      const stored = (run.ledgers.get(step.event.referralId) ?? []).find(
        (write) => enc(adapterFields(write.fields).notes) === enc(notes),
      );
      if (stored !== undefined) {
        violate('wrongAnswer', `seed ${seed}: the body reusing ${step.event.id} was stored (write ${stored.seq})`);
      }
    }
  }
  // Events answered `updated` have exactly one write; nothing unanswered is silently missing.
  const finalOutcomes: Record<string, number> = {};
  for (const track of tracks.values()) {
    const original = track.original;
    const key =
      original === undefined
        ? 'unresolved (every delivery retryable)'
        : original.status === 200
          ? String(original.body?.outcome)
          : String(original.body?.code ?? original.status);
    bump(finalOutcomes, key);
    if (original?.status === 200 && Array.isArray(original.body?.superseded) && original.body.outcome !== 'stale') {
      bump(finalOutcomes, 'of which superseded in part');
    }
    if (original === undefined) figures.unresolvedEvents++;
    if (original?.status === 200 && original.body?.outcome === 'updated' && track.writes !== 1) {
      violate('lost', `seed ${seed}: event ${track.event.id} answered updated with ${track.writes} writes`);
    }
  }

  // Liveness: a caller that retries like Power Automate gets a final answer (a retry-exhausted event is one
  // its caller gives up on).
  if (figures.unresolvedEvents > MAX_UNRESOLVED_EVENTS) {
    violate(
      'unresolved',
      `seed ${seed}: ${figures.unresolvedEvents} events got only retryable answers after ${CALLER_RETRIES} caller retries (at most ${MAX_UNRESOLVED_EVENTS} allowed); answers by status: ${JSON.stringify(figures.answersByStatus)}`,
    );
  }

  return { unresolvedFields, finalOutcomes };
}
