/**
 * The checks of one step of the reliability run (pure), made right after the step, before anything else can
 * touch its referral: the writes the sandbox stored during the step, the step's answers and the model.
 *
 * Every write stored for a referral happens during exactly one step of that referral (its steps run one
 * after another), so a step stores at most one write, and only for its own event; a step that only replays,
 * or whose answer is `stale`, `referral_closed` or `idempotency_key_reused`, stores none; `unchanged`
 * stores one only when an earlier attempt of the same step ended retryably (its PUT landed and its answer
 * was lost). A replayed answer has the status, body bytes and content type of the event's first final
 * answer, and an event runs to a final answer only once.
 */
import type { AppliedWrite } from '../../../dev/sandbox/server.js';
import { type Attempt, isFinal, mayHaveWritten } from './answers.js';
import {
  checkFreshAnswer,
  checkWriteBelongs,
  enc,
  type Field,
  fieldsDiff,
  type Json,
  type RefModel,
  sameFields,
  show,
  supersession,
  union,
} from './model.js';
import type { PlannedEvent, Step } from './plan.js';
import type { Violate } from './violations.js';

/** What the run knows of one event across its steps. */
export interface Track {
  event: PlannedEvent;
  /** The event's first final answer that was not a replay. */
  original?: Attempt;
  /** Retryable answers that may have followed a landed write (not `in_progress`). */
  unconfirmed: number;
  /** Applied writes stored during the event's steps. */
  writes: number;
}

/** What one step saw: its answers, and the referral's adapter-written fields and new writes around it. */
export interface StepSeen {
  attempts: Attempt[];
  before: Record<Field, unknown>;
  after: Record<Field, unknown>;
  writes: readonly AppliedWrite[];
  where: string;
}

/** Checks a step that was run (a reuse step whose id was never used is not run) and moves the model. */
export function checkStep(step: Step, model: RefModel, track: Track, seen: StepSeen, violate: Violate): void {
  const { attempts, before, after, writes, where } = seen;
  const event = step.event;
  track.writes += writes.length;
  if (writes.length > 1) {
    violate(
      'doubled',
      `${where}: ${writes.length} writes stored in one step: ${writes.map((w) => `seq ${w.seq} (fault ${w.fault ?? 'none'})`).join(', ')}`,
    );
  }

  if (step.type === 'reuse') {
    for (const answer of attempts) {
      if (answer.status !== 422 || answer.body?.code !== 'idempotency_key_reused' || answer.replayed) {
        violate('wrongAnswer', `${where}: a different body under a used id got ${answer.status} ${answer.text}`);
      }
    }
    if (writes.length > 0 || !sameFields(before, after)) {
      violate('wrongAnswer', `${where}: the reused id's body was written (${writes.length} writes)`);
    }
    return;
  }

  const fresh = attempts.filter((answer) => !answer.replayed && isFinal(answer));
  const hadOriginal = track.original !== undefined;
  if (fresh.length > (hadOriginal ? 0 : 1)) {
    violate(
      'doubled',
      `${where}: the event ran to a final answer ${fresh.length + (hadOriginal ? 1 : 0)} times: ${[track.original, ...fresh].flatMap((a) => (a ? [`${a.status} ${a.text}`] : [])).join(' / ')}`,
    );
  }
  const first = fresh[0];
  if (!hadOriginal && first !== undefined) track.original = first;
  for (const answer of attempts.filter((a) => a.replayed)) {
    const original = track.original;
    if (original === undefined) {
      violate('replayMismatch', `${where}: a replay of an answer never given: ${answer.status} ${answer.text}`);
    } else if (
      answer.status !== original.status ||
      answer.text !== original.text ||
      answer.contentType !== original.contentType
    ) {
      violate(
        'replayMismatch',
        `${where}: replay differs from the first answer:\n  first:  ${original.status} ${original.contentType} ${original.text}\n  replay: ${answer.status} ${answer.contentType} ${answer.text}`,
      );
    }
  }
  const unconfirmed = attempts.filter(mayHaveWritten).length;
  track.unconfirmed += unconfirmed;

  if (hadOriginal) {
    // The event's answer was stored before this step: only replays, nothing read or written.
    if (writes.length > 0) {
      violate('doubled', `${where}: a redelivery of an answered event wrote again (seq ${writes[0]?.seq})`);
    }
    return;
  }
  if (first === undefined) {
    // Every delivery ended retryably: the PUT may or may not have landed.
    const { may } = supersession(model, event);
    union(model, event);
    for (const write of writes) checkWriteBelongs(event, write, before, where, violate, may);
    return;
  }
  const outcome = first.body?.outcome;
  // An earlier attempt of this step may have stored the event (its answer lost): then `unchanged` is right.
  if (unconfirmed > 0 && first.status === 200 && outcome !== 'stale') union(model, event);
  const skipped = checkFreshAnswer(model, event, first, where, violate);

  if (first.status === 200 && outcome === 'updated') {
    const write = writes[0];
    if (writes.length !== 1 || write === undefined) {
      violate('lost', `${where}: answered updated, but ${writes.length} writes were stored: ${first.text}`);
    } else {
      checkWriteBelongs(event, write, before, where, violate, skipped);
      if (first.body?.eTag !== write.eTag) {
        violate('wrongAnswer', `${where}: updated with eTag ${show(first.body?.eTag)}, the write stored ${write.eTag}`);
      }
    }
  } else if (first.status === 200 && outcome === 'unchanged') {
    if (writes.length > 0 && unconfirmed === 0) {
      violate(
        'wrongAnswer',
        `${where}: answered unchanged, but its write (seq ${writes[0]?.seq}) was stored in this step and no attempt lost an answer`,
      );
    }
    for (const write of writes) checkWriteBelongs(event, write, before, where, violate, skipped);
  } else if (writes.length > 0 || !sameFields(before, after)) {
    violate(
      'wrongAnswer',
      `${where}: answered ${first.status} ${String(outcome ?? first.body?.code)} but wrote: ${fieldsDiff(before, after)
        .map((f) => `${f} ${show(before[f])} → ${show(after[f])}`)
        .join(', ')}`,
    );
  }
  if (first.status === 200 && (outcome === 'updated' || outcome === 'unchanged')) {
    // "A 200 means the values are in the sandbox" (but for the superseded ones): checked right after the
    // step, before anything else can touch this referral.
    const absent = (Object.entries(event.values) as Array<[Field, Json]>).filter(
      ([field, value]) => !skipped.has(field) && enc(after[field]) !== enc(value),
    );
    if (absent.length > 0) {
      violate(
        'lost',
        `${where}: answered ${outcome}, but the sandbox holds ${absent.map(([f, v]) => `${f}=${show(after[f])} instead of ${show(v)}`).join(', ')}`,
      );
    }
  }
}
