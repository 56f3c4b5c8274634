/**
 * Ordering by `occurredAt`, per field (docs/ordering.md), proved against a model of per-field
 * last-writer-wins: for every field, Partner Center ends with the value of an event with the latest
 * `occurredAt` among the events that named it and succeeded (ties: any of them).
 *
 * In process: processEvent runtimes sharing one memory store and one fake Partner Center with eTags,
 * each with its own KeyedLock (two "instances"), and fast-check's scheduler choosing the interleaving of
 * every Partner Center request (sent, applied, answered) and every ordering-record call.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AdapterError } from '../../shared/core/errors.js';
import {
  claimFields,
  confirmClaims,
  decideOrder,
  type OrderingRecord,
  parseOrderingRecord,
  rollbackClaims,
  settleLapsed,
  valueKey,
} from '../../shared/core/ordering.js';
import type { JsonObject } from '../../shared/core/referral.js';
import { createMemoryIdempotencyStore, type IdempotencyStore } from '../../shared/idempotency/store.js';
import type {
  PartnerCenterClient,
  PlannedWrite,
  RequestContext,
  WriteResult,
} from '../../shared/partner-center/client.js';
import { deliver, REFERRAL_ID, referral, type TestApp, testApp } from '../support/use-cases.js';

/** The fields the events write here, and how a value of each is named and read back. */
const FIELDS = ['notes', 'dealValue', 'name', 'substatus'] as const;
type Field = (typeof FIELDS)[number];

interface PlannedEvent {
  index: number;
  instance: 0 | 1;
  /** Seconds past the base time; undefined: no occurredAt. */
  second: number;
  fields: Field[];
  eventId: boolean;
}

const BASE = Date.parse('2026-11-25T10:00:00Z');
const at = (second: number) => new Date(BASE + second * 1000).toISOString();

function valueFor(field: Field, index: number): unknown {
  if (field === 'notes') return `notes of ${index}`;
  if (field === 'dealValue') return 1000 + index;
  if (field === 'name') return `name of ${index}`;
  return index % 2 === 0 ? 'Received' : 'Pending';
}

function bodyOf(event: PlannedEvent): Record<string, unknown> {
  const body: Record<string, unknown> = { referralId: REFERRAL_ID, occurredAt: at(event.second) };
  for (const field of event.fields) body[field] = valueFor(field, event.index);
  if (field(event, 'substatus')) body.status = 'New';
  return body;
}
const field = (event: PlannedEvent, f: Field) => event.fields.includes(f);

function read(ref: JsonObject, f: Field): unknown {
  if (f === 'name' || f === 'substatus') return ref[f];
  return (ref.details as JsonObject)[f];
}

/** Partner Center holding one referral, with eTags; each request is sent, applied and answered at scheduled points. */
class FakePartnerCenter implements PartnerCenterClient {
  referral: JsonObject = referral();
  eTag = 1;
  constructor(readonly schedule: (label: string) => Promise<unknown>) {}

  async close() {}

  async getReferral() {
    await this.schedule('GET sent');
    const answer = { referral: { ...structuredClone(this.referral), eTag: `"${this.eTag}"` }, eTag: `"${this.eTag}"` };
    await this.schedule('GET answered');
    return answer;
  }

  /** What the next PUTs meet, in order (then none): refused for good, or applied with the answer lost. */
  faults: Array<'none' | 'refuse' | 'lose'> = [];

  /** Writes as `PUT` (the default write method). */
  writeReferral(id: string, write: PlannedWrite, eTag: string, context: RequestContext): Promise<WriteResult> {
    return this.putReferral(id, write.body, eTag, context);
  }

  async putReferral(_id: string, body: JsonObject, eTag: string, _context?: RequestContext): Promise<WriteResult> {
    await this.schedule('PUT sent');
    const fault = this.faults.shift() ?? 'none';
    if (fault === 'refuse') {
      throw new AdapterError('upstream_rejected', 'Partner Center refused the write.', { upstreamStatus: 400 });
    }
    let result: WriteResult;
    if (eTag !== `"${this.eTag}"`) result = { kind: 'precondition-failed', upstreamStatus: 412 };
    else {
      this.eTag++;
      this.referral = structuredClone(body);
      result = { kind: 'written', referral: structuredClone(body), eTag: `"${this.eTag}"` };
    }
    await this.schedule('PUT answered');
    if (fault === 'lose') throw new AdapterError('upstream_timeout', 'The answer was lost.', { upstreamStatus: 504 });
    return result;
  }
}

/** The memory store with every ordering-record call at a scheduled point. */
function scheduledStore(schedule: (label: string) => Promise<unknown>): IdempotencyStore {
  const store = createMemoryIdempotencyStore();
  return {
    ...store,
    readOrdering: async (...args) => {
      await schedule('record read');
      return store.readOrdering(...args);
    },
    writeOrdering: async (...args) => {
      await schedule('record write');
      return store.writeOrdering(...args);
    },
  };
}

const eventsArb = fc
  .array(
    fc.record({
      instance: fc.constantFrom<0 | 1>(0, 1),
      second: fc.integer({ min: 0, max: 5 }),
      fields: fc.subarray([...FIELDS], { minLength: 1 }),
      eventId: fc.boolean(),
      duplicate: fc.boolean(),
    }),
    { minLength: 1, maxLength: 7 },
  )
  .map((events) =>
    events.flatMap(({ duplicate, ...event }, index): PlannedEvent[] => {
      const planned = { ...event, index };
      // A duplicate: the same event again, on the other instance.
      return duplicate ? [planned, { ...planned, instance: planned.instance === 0 ? 1 : 0 }] : [planned];
    }),
  );

const faultsArb = fc.array(fc.constantFrom<'none' | 'refuse' | 'lose'>('none', 'none', 'none', 'refuse', 'lose'), {
  maxLength: 8,
});

const SETTINGS = { CONCURRENCY_MAX_RETRIES: '10', UPSTREAM_MAX_RETRIES: '10' };

describe('ordering by occurredAt, per field, against a model of per-field last-writer-wins', () => {
  it('holds for any arrival order, duplicates, refused and lost writes, and interleaving of two instances sharing one store', async () => {
    await fc.assert(
      fc.asyncProperty(eventsArb, faultsArb, fc.scheduler(), async (events, faults, s) => {
        const schedule = (label: string) => s.schedule(Promise.resolve(label));
        const pc = new FakePartnerCenter(schedule);
        pc.faults = [...faults];
        const store = scheduledStore(schedule);
        const apps: TestApp[] = [
          testApp(pc, { settings: SETTINGS, idempotency: store }),
          testApp(pc, { settings: SETTINGS, idempotency: store }),
        ];
        const initial = structuredClone(pc.referral);
        let done = false;
        const answers = Promise.all(
          events.map((event) =>
            deliver(apps[event.instance] as TestApp, {
              body: bodyOf(event),
              headers: event.eventId ? { 'webhook-id': `evt-${event.index}` } : {},
            }),
          ),
        ).finally(() => {
          done = true;
        });
        while (!done) {
          await s.waitAll();
          // Backoff sleeps (a few ms) run on real timers: let them fire, then release what they scheduled.
          if (!done) await new Promise((resolve) => setTimeout(resolve, 2));
        }
        const results = await answers;

        // Only events that succeeded take part; a 409 after exhausting conflicts, or a write refused for good
        // (422), wrote nothing and gave its claims back.
        const succeeded = new Set<number>();
        for (const [i, result] of results.entries()) {
          const event = events[i] as PlannedEvent;
          if (result.status === 409 || result.status === 422) continue;
          expect(result.status, `${result.body}\n${s.report().length} scheduled`).toBe(200);
          expect(['updated', 'unchanged', 'stale']).toContain(result.json.outcome);
          const superseded = (result.json.superseded ?? []) as Array<{ path: string; occurredAt: string }>;
          for (const entry of superseded)
            expect(Date.parse(entry.occurredAt)).toBeGreaterThan(BASE + event.second * 1000);
          if (result.json.outcome !== 'stale') succeeded.add(event.index);
        }
        for (const f of FIELDS) {
          const namers = events.filter((e) => field(e, f) && succeeded.has(e.index));
          const final = read(pc.referral, f);
          if (namers.length === 0) {
            expect(final).toEqual(read(initial, f));
            continue;
          }
          const latest = Math.max(...namers.map((e) => e.second));
          const allowed = namers.filter((e) => e.second === latest).map((e) => valueFor(f, e.index));
          expect(
            allowed,
            `${f}: Partner Center holds ${JSON.stringify(final)}\n${s
              .report()
              .map((t) => t.label)
              .join(' ')}`,
          ).toContainEqual(final);
        }
        // Every stale event was superseded on each field by a later event that succeeded and named it.
        for (const [i, result] of results.entries()) {
          const event = events[i] as PlannedEvent;
          if (result.json.outcome !== 'stale') continue;
          for (const f of event.fields) {
            expect(events.some((e) => field(e, f) && e.second > event.second && succeeded.has(e.index))).toBe(true);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it("the T2-to-A, T1-to-B race: B decides again after reading, sees A's claim and writes nothing (issue #11)", async () => {
    // B (T1, notes OLDER) reads first, and its answer is held until A (T2, notes NEWER) has finished: B
    // then holds the eTag A's write replaced. Before the fix B's 412 loop re-read and wrote OLDER.
    const pc = new FakePartnerCenter(async () => {});
    const store = createMemoryIdempotencyStore();
    const a = testApp(pc, { idempotency: store });
    const b = testApp(pc, { idempotency: store });
    const getReferral = pc.getReferral.bind(pc);
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reads = 0;
    let bHasRead = false;
    pc.getReferral = async () => {
      const answer = await getReferral();
      if (reads++ === 0) {
        bHasRead = true;
        await held;
      }
      return answer;
    };
    const older = deliver(b, { body: { referralId: REFERRAL_ID, occurredAt: at(1), notes: 'OLDER' } });
    while (!bHasRead) await new Promise((resolve) => setTimeout(resolve, 1));
    const newer = await deliver(a, { body: { referralId: REFERRAL_ID, occurredAt: at(2), notes: 'NEWER' } });
    release?.();
    const late = await older;

    expect(newer.json.outcome).toBe('updated');
    expect(late.json).toMatchObject({ outcome: 'stale', superseded: [{ path: '/details/notes', occurredAt: at(2) }] });
    expect((pc.referral.details as JsonObject).notes).toBe('NEWER');
  });
});

describe('claims that are never confirmed (docs/ordering.md#crashes-and-failed-writes)', () => {
  const notesEvent = (second: number, notes: string) => ({ referralId: REFERRAL_ID, occurredAt: at(second), notes });
  const noSchedule = async () => {};
  const lapsedClaim = (value: string): OrderingRecord => ({
    notes: { at: at(5), pending: { by: 'crashed-instance', key: valueKey('notes', value), until: 1 } },
  });

  it('a lapsed claim whose write never landed is rolled back: an older event is applied', async () => {
    const pc = new FakePartnerCenter(noSchedule);
    const store = createMemoryIdempotencyStore();
    await store.writeOrdering(REFERRAL_ID, lapsedClaim('CRASHED'), undefined);

    const older = await deliver(testApp(pc, { idempotency: store }), { body: notesEvent(3, 'older') });

    expect(older.json.outcome).toBe('updated');
    expect((pc.referral.details as JsonObject).notes).toBe('older');
    expect((await store.readOrdering(REFERRAL_ID)).record).toEqual({ notes: { at: at(3) } });
  });

  it('a lapsed claim whose write landed is confirmed: an older event is stale', async () => {
    const pc = new FakePartnerCenter(noSchedule);
    (pc.referral.details as JsonObject).notes = 'CRASHED';
    const store = createMemoryIdempotencyStore();
    await store.writeOrdering(REFERRAL_ID, lapsedClaim('CRASHED'), undefined);

    const older = await deliver(testApp(pc, { idempotency: store }), { body: notesEvent(3, 'older') });

    expect(older.json).toMatchObject({ outcome: 'stale', lastAppliedOccurredAt: at(5) });
    expect((pc.referral.details as JsonObject).notes).toBe('CRASHED');
  });

  it('a live claim of another event is waited for, never answered as stale; at the end of the budget a retryable 409/504', async () => {
    const pc = new FakePartnerCenter(noSchedule);
    const store = createMemoryIdempotencyStore();
    const live = { ...lapsedClaim('IN FLIGHT') };
    (live.notes as { pending: { until: number } }).pending.until = Number.MAX_SAFE_INTEGER;
    await store.writeOrdering(REFERRAL_ID, live, undefined);
    const app = testApp(pc, { idempotency: store, settings: { UPSTREAM_BUDGET_MS: '1000' } });

    const waiting = await deliver(app, { body: notesEvent(3, 'older') });

    // 409 conflict when the budget ends while it waits; 504 when it ends during the re-read (a loaded machine).
    expect([409, 504]).toContain(waiting.status);
    expect(waiting.json).toMatchObject({ retryable: true });
    expect(waiting.json.outcome).toBeUndefined();
    expect((pc.referral.details as JsonObject).notes).not.toBe('older');
  });

  it('a write that fails for good gives its claim back: an older event on the field is then applied', async () => {
    const pc = new FakePartnerCenter(noSchedule);
    const store = createMemoryIdempotencyStore();
    const app = testApp(pc, { idempotency: store });
    const putReferral = pc.putReferral.bind(pc);
    let puts = 0;
    pc.putReferral = async (...args) => {
      if (puts++ === 0) {
        throw new AdapterError('upstream_rejected', 'Partner Center refused the write.', { upstreamStatus: 400 });
      }
      return putReferral(...args);
    };

    const refused = await deliver(app, { body: notesEvent(5, 'refused') });
    // Given back at once, not left to lapse (the older event would otherwise wait out the claim).
    expect((await store.readOrdering(REFERRAL_ID)).record).toEqual({});
    const older = await deliver(app, { body: notesEvent(3, 'older') });

    expect(refused.status).toBe(422);
    expect(older.json.outcome).toBe('updated');
    expect((pc.referral.details as JsonObject).notes).toBe('older');
  });
});

describe('a claim whose PUT may still land (review of #11)', () => {
  const notesEvent = (second: number, notes: string, eventId?: string) => ({
    referralId: REFERRAL_ID,
    occurredAt: at(second),
    notes,
    ...(eventId ? { eventId } : {}),
  });
  const noSchedule = async () => {};

  it("a redelivery that fails before its own PUT never rolls back the first delivery's claim; that PUT lands late, an older event stays out", async () => {
    const pc = new FakePartnerCenter(noSchedule);
    const store = createMemoryIdempotencyStore();
    const app = testApp(pc, {
      idempotency: store,
      settings: { UPSTREAM_MAX_RETRIES: '0', UPSTREAM_REQUEST_TIMEOUT_MS: '100' },
    });
    // Claims lapse 100 ms + 50 ms after they are written, so the older event below waits only that long.
    app.runtimeValue.orderingClaimMarginMs = 50;
    await deliver(app, { body: notesEvent(1, 'v1') });
    // Delivery 1 of the event at t=3: the PUT is sent, its answer is lost, and it has not landed yet.
    let landLate: (() => void) | undefined;
    const putReferral = pc.putReferral.bind(pc);
    pc.putReferral = async (_id, body) => {
      landLate = () => {
        pc.eTag++;
        pc.referral = structuredClone(body);
      };
      throw new AdapterError('upstream_timeout', 'The answer was lost.', { upstreamStatus: 504 });
    };
    expect((await deliver(app, { body: notesEvent(3, 'v3', 'evt-3') })).status).toBe(504);
    // Delivery 2 (same event id: the same claim) fails at its GET, before any PUT of its own.
    const getReferral = pc.getReferral.bind(pc);
    pc.getReferral = async () => {
      throw new AdapterError('upstream_unavailable', 'Throttled.', { upstreamStatus: 429, retryAfterSeconds: 30 });
    };
    expect((await deliver(app, { body: notesEvent(3, 'v3', 'evt-3') })).status).toBe(503);
    pc.getReferral = getReferral;
    pc.putReferral = putReferral;
    landLate?.();

    const older = await deliver(app, { body: notesEvent(2, 'v2') });

    expect(older.json.outcome).toBe('stale');
    expect((pc.referral.details as JsonObject).notes).toBe('v3');
  });

  it('a referral read before another event claimed, wrote and confirmed is read again: the newer event is not "unchanged" on a stale read', async () => {
    // E1 (t=4, substatus Pending) reads the referral (Pending: nothing to write) and stops there; E2 (t=3,
    // substatus Received) then claims, writes and confirms; E1 goes on. Found by the property test.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    let gets = 0;
    const pc = new FakePartnerCenter(async (label) => {
      if (label === 'GET answered' && ++gets === 1) await gate;
    });
    const store = createMemoryIdempotencyStore();
    const [a, b] = [testApp(pc, { idempotency: store }), testApp(pc, { idempotency: store })];
    const newer = deliver(a, {
      body: { referralId: REFERRAL_ID, occurredAt: at(4), status: 'New', substatus: 'Pending' },
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const older = await deliver(b, {
      body: { referralId: REFERRAL_ID, occurredAt: at(3), status: 'New', substatus: 'Received' },
    });
    expect(older.json.outcome).toBe('updated');
    openGate();

    expect((await newer).json.outcome).toBe('updated');
    expect(pc.referral.substatus).toBe('Pending');
  });

  it('the PUT after a claim is bounded by the claim, token wait included: it never runs past the claim', async () => {
    const pc = new FakePartnerCenter(noSchedule);
    const store = createMemoryIdempotencyStore();
    const app = testApp(pc, { idempotency: store, settings: { UPSTREAM_REQUEST_TIMEOUT_MS: '100' } });
    const seen: Array<{ timeoutMs: number; aborted: boolean }> = [];
    const putReferral = pc.putReferral.bind(pc);
    pc.putReferral = async (_id, _body, _eTag, context) => {
      // A request that waits (for a token, say) until its signal aborts: the claim's bound must end it.
      await new Promise<void>((resolve) => context?.abortSignal?.addEventListener('abort', () => resolve()));
      seen.push({ timeoutMs: context?.timeoutMs ?? -1, aborted: context?.abortSignal?.aborted === true });
      pc.putReferral = putReferral;
      throw new AdapterError('upstream_timeout', 'No answer in time.', { upstreamStatus: 504 });
    };

    const answer = await deliver(app, { body: notesEvent(3, 'v3') });

    expect(seen).toEqual([{ timeoutMs: expect.any(Number), aborted: true }]);
    expect(seen[0]?.timeoutMs).toBeLessThanOrEqual(100);
    expect(answer.json.outcome).toBe('updated');
  });
});

describe('Table round trips per ordered event (the store calls of the ordering record)', () => {
  it('3 when it writes, 2 when Partner Center already holds the values, 1 when stale before the read', async () => {
    const pc = new FakePartnerCenter(async () => {});
    const memory = createMemoryIdempotencyStore();
    let calls = 0;
    const store: IdempotencyStore = {
      ...memory,
      readOrdering: (...args) => {
        calls++;
        return memory.readOrdering(...args);
      },
      writeOrdering: (...args) => {
        calls++;
        return memory.writeOrdering(...args);
      },
    };
    const app = testApp(pc, { idempotency: store });
    const send = async (second: number, notes: string) => {
      calls = 0;
      const answer = await deliver(app, { body: { referralId: REFERRAL_ID, occurredAt: at(second), notes } });
      return [answer.json.outcome, calls];
    };

    expect(await send(2, 'written')).toEqual(['updated', 3]);
    expect(await send(3, 'written')).toEqual(['unchanged', 2]);
    expect(await send(1, 'older')).toEqual(['stale', 1]);
  });
});

describe('the pure per-field decision (core/ordering.ts)', () => {
  const t = (second: number) => at(second);

  it('applies unset and older fields, skips later ones, waits on another claim, ties apply', () => {
    const record: OrderingRecord = {
      notes: { at: t(3) },
      dealValue: { at: t(1) },
      name: { at: t(2) },
      currency: { at: t(0), pending: { by: 'other', key: 'k', until: Number.MAX_SAFE_INTEGER } },
    };
    expect(decideOrder(record, t(2), ['notes', 'dealValue', 'name', 'currency', 'status'], 'me')).toEqual({
      apply: ['dealValue', 'name', 'status'],
      superseded: [{ field: 'notes', occurredAt: t(3) }],
      waitFor: ['currency'],
    });
  });

  it('a claim is pending for fields it writes, confirmed for fields already held; confirm and rollback settle it', () => {
    const claimed = claimFields({ notes: { at: t(1) } }, t(2), ['notes', 'name'], new Map([['notes', 'k']]), {
      by: 'me',
      until: 10,
    });
    expect(claimed).toEqual({
      notes: { at: t(2), pending: { by: 'me', key: 'k', prev: t(1), until: 10 } },
      name: { at: t(2) },
    });
    expect(confirmClaims(claimed, 'me')).toEqual({ notes: { at: t(2) }, name: { at: t(2) } });
    expect(rollbackClaims(claimed, 'me')).toEqual({ notes: { at: t(1) }, name: { at: t(2) } });
    expect(rollbackClaims(claimed, 'someone else')).toEqual(claimed);
  });

  it('a stored record is read leniently; a row of the earlier format (one time per referral) applies to every field', () => {
    const record: OrderingRecord = { notes: { at: t(2), pending: { by: 'x', key: 'k', until: 5, prev: t(1) } } };
    expect(parseOrderingRecord(JSON.stringify(record))).toEqual(record);
    expect(parseOrderingRecord('not json')).toEqual({});
    expect(parseOrderingRecord(JSON.stringify({ notes: { at: 5 }, dealValue: { at: t(1), pending: 'x' } }))).toEqual({
      dealValue: { at: t(1) },
    });
    const legacy = parseOrderingRecord(undefined, t(3));
    expect(Object.keys(legacy)).toHaveLength(8);
    expect(decideOrder(legacy, t(2), ['notes', 'status'], 'me').superseded).toHaveLength(2);
  });

  it('a lapsed claim is settled by a read that started after it lapsed: landed → confirmed, else rolled back', () => {
    const pending = (key: string): OrderingRecord => ({
      notes: { at: t(2), pending: { by: 'gone', key, prev: t(1), until: 100 } },
    });
    const ref = referral({ details: { notes: 'landed' } });
    const landed = valueKey('notes', 'landed');
    expect(settleLapsed(pending(landed), ref, 101)).toEqual({ notes: { at: t(2) } });
    expect(settleLapsed(pending(valueKey('notes', 'other')), ref, 101)).toEqual({ notes: { at: t(1) } });
    // Not lapsed before the read started: still pending (its write may land after the read).
    expect(settleLapsed(pending(landed), ref, 100)).toEqual(pending(landed));
  });
});
