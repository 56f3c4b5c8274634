/**
 * The plan of a batch (shared/core/plan-batch.ts, docs/ordering.md#batches), against a model: the same
 * events applied one by one, each with its own read → planUpdate → PUT against a Partner Center that
 * stores what each PUT sends. For any sequence of events on one referral (refused ones in the middle
 * included), the batch's one PUT leaves the referral as the sequence does, and each event is answered the
 * same outcome and changes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAdapterError } from '../../shared/core/errors.js';
import type { Change } from '../../shared/core/merge.js';
import { type BatchEventPlan, planBatch, planOrderedBatch } from '../../shared/core/plan-batch.js';
import { planUpdate } from '../../shared/core/plan-update.js';
import { isReadOnlyAnnotation, type JsonObject, STATUSES, SUBSTATUSES } from '../../shared/core/referral.js';
import type { UpdateIntent } from '../../shared/core/update.js';
import { REFERRAL_ID, referral } from '../support/use-cases.js';

/** What an event is answered, as the model and the batch both say it. */
type Answer = { outcome: 'updated' | 'unchanged'; changes: Change[] } | { code: string };

function answerOf(plan: BatchEventPlan): Answer {
  if (plan.kind === 'refused') return { code: plan.error.code };
  if (plan.kind === 'stale') return { code: 'stale' };
  return plan.kind === 'changed'
    ? { outcome: 'updated', changes: plan.changes }
    : { outcome: 'unchanged', changes: [] };
}

/** The referral without what Partner Center sets itself or a PUT drops (eTag, links, annotations). */
function stored(ref: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(ref).filter(([key]) => key !== 'eTag' && !isReadOnlyAnnotation(key)));
}

/** The model: one event after another, each read, planned and written on its own. */
function oneByOne(start: JsonObject, intents: readonly UpdateIntent[]): { final: JsonObject; answers: Answer[] } {
  let held = structuredClone(start);
  const answers = intents.map((intent): Answer => {
    try {
      const plan = planUpdate(REFERRAL_ID, structuredClone(held), intent);
      if (plan.kind === 'unchanged') return { outcome: 'unchanged', changes: [] };
      held = structuredClone(plan.body);
      return { outcome: 'updated', changes: plan.changes };
    } catch (error) {
      if (isAdapterError(error)) return { code: error.code };
      throw error;
    }
  });
  return { final: held, answers };
}

const START = [
  referral(),
  referral({ status: 'New', substatus: 'Received' }),
  referral({ status: 'Active', substatus: 'Accepted' }),
  referral({ status: 'Closed', substatus: 'Won' }),
  { ...referral({ status: 'Active', substatus: 'Accepted' }), details: null },
  referral({ status: 'Active', substatus: 'Error' }),
];

/** A few values per field, so that events often repeat, undo or overwrite each other. */
const intentArb: fc.Arbitrary<UpdateIntent> = fc
  .record(
    {
      status: fc.constantFrom(...STATUSES),
      substatus: fc.constantFrom(...SUBSTATUSES),
      statusReason: fc.constantFrom('', 'Customer asked'),
      dealValue: fc.constantFrom(50000, 1, 2),
      currency: fc.constantFrom('USD', 'EUR'),
      closingDateTime: fc.constantFrom('2026-12-15T00:00:00Z', '2026-12-15T00:00:00.0000000Z', '2027-01-31T00:00:00Z'),
      notes: fc.constantFrom('Looking at Dynamics 365.', 'Call back', 'Signed'),
      name: fc.constantFrom('Fabrikam supply chain modernisation', 'Renamed'),
      externalReferenceId: fc.constantFrom('crm-1', 'crm-2'),
    },
    { requiredKeys: [] },
  )
  .filter((intent) => Object.keys(intent).length > 0);

describe('planBatch: one read and one PUT for a sequence of events, as if they were applied one by one', () => {
  it('leaves the referral as the sequence does and answers each event the same outcome and changes', () => {
    fc.assert(
      fc.property(fc.constantFrom(...START), fc.array(intentArb, { minLength: 1, maxLength: 12 }), (start, intents) => {
        const model = oneByOne(start, intents);
        const batch = planBatch(REFERRAL_ID, structuredClone(start), intents);

        expect(batch.events.map(answerOf)).toEqual(model.answers);
        const written = model.answers.some((a) => 'outcome' in a && a.outcome === 'updated');
        expect(batch.body !== undefined).toBe(written);
        expect(stored(batch.final)).toEqual(stored(model.final));
        if (batch.body) expect(Object.keys(batch.body).some(isReadOnlyAnnotation)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('a refused event in the middle gets its own error; the events around it are applied', () => {
    const intents: UpdateIntent[] = [
      { dealValue: 1 },
      { status: 'Closed', substatus: 'Won' },
      { status: 'New', substatus: 'Pending' },
      { notes: 'after the close' },
    ];
    const batch = planBatch(REFERRAL_ID, referral({ status: 'Active', substatus: 'Accepted' }), intents);

    expect(batch.events.map((e) => e.kind)).toEqual(['changed', 'changed', 'refused', 'refused']);
    expect(batch.events.map(answerOf).slice(2)).toEqual([{ code: 'referral_closed' }, { code: 'referral_closed' }]);
    expect(batch.body).toMatchObject({ status: 'Closed', substatus: 'Won', details: { dealValue: 1 } });
  });

  it('each event sees the values the events before it left (from → to in sequence)', () => {
    const batch = planBatch(REFERRAL_ID, referral(), [{ dealValue: 1 }, { dealValue: 2 }, { dealValue: 2 }]);

    expect(batch.events).toEqual([
      { kind: 'changed', changes: [{ path: '/details/dealValue', from: 50000, to: 1 }], superseded: [] },
      { kind: 'changed', changes: [{ path: '/details/dealValue', from: 1, to: 2 }], superseded: [] },
      { kind: 'unchanged', superseded: [] },
    ]);
    expect(batch.body).toMatchObject({ details: { dealValue: 2 } });
  });
});

describe('planOrderedBatch: events with occurredAt, decided per field as if applied one by one', () => {
  const t = (second: number) => `2026-11-25T10:00:0${second}.000Z`;

  it('a field set by a later event (in the record or earlier in the batch) is superseded; ties apply; times only move forward', () => {
    const batch = planOrderedBatch(REFERRAL_ID, referral(), { notes: { at: t(5) } }, [
      { intent: { dealValue: 3, notes: 'older than the record' }, occurredAt: t(3) },
      { intent: { dealValue: 1 }, occurredAt: t(1) },
      { intent: { dealValue: 3 }, occurredAt: t(3) },
      { intent: { notes: 'newest', name: 'N' }, occurredAt: t(6) },
    ]);

    expect(batch.events).toEqual([
      {
        kind: 'changed',
        changes: [{ path: '/details/dealValue', from: 50000, to: 3 }],
        superseded: [{ field: 'notes', occurredAt: t(5) }],
      },
      { kind: 'stale', superseded: [{ field: 'dealValue', occurredAt: t(3) }] },
      { kind: 'unchanged', superseded: [] },
      {
        kind: 'changed',
        changes: [
          { path: '/details/notes', from: 'Looking at Dynamics 365.', to: 'newest' },
          { path: '/name', from: 'Fabrikam supply chain modernisation', to: 'N' },
        ],
        superseded: [],
      },
    ]);
    expect(Object.fromEntries(batch.applied)).toEqual({
      // dealValue: the third event (a tie with the first) applied it last; its claim is that event's.
      dealValue: { at: t(3), event: 2 },
      notes: { at: t(6), event: 3 },
      name: { at: t(6), event: 3 },
    });
    expect(batch.body).toMatchObject({ name: 'N', details: { dealValue: 3, notes: 'newest' } });
  });

  it('an event the rules refuse moves neither the referral nor the record: a later-arriving older event still applies', () => {
    const batch = planOrderedBatch(REFERRAL_ID, referral({ status: 'Active', substatus: 'Accepted' }), {}, [
      { intent: { status: 'New', substatus: 'Pending' }, occurredAt: t(5) },
      { intent: { status: 'Closed', substatus: 'Won' }, occurredAt: t(2) },
    ]);

    expect(batch.events.map((e) => e.kind)).toEqual(['refused', 'changed']);
    expect(Object.fromEntries(batch.applied)).toEqual({ status: { at: t(2), event: 1 } });
    expect(batch.body).toMatchObject({ status: 'Closed', substatus: 'Won' });
  });

  it('an event naming no field (a stage mapped to no status) is unchanged, not stale, as alone', () => {
    const batch = planOrderedBatch(REFERRAL_ID, referral(), { status: { at: t(5) } }, [
      { intent: {}, occurredAt: t(1) },
    ]);

    expect(batch.events).toEqual([{ kind: 'unchanged', superseded: [] }]);
    expect(batch.body).toBeUndefined();
  });
});
