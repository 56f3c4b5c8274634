/**
 * Group commit per referral (shared/use-cases/referral-batch.ts, docs/ordering.md#batches), in process:
 * deliveries through processEvent on one app, against an in-process Partner Center holding one referral with
 * eTags, which counts its calls. An "opener" event holds the referral's turn (its GET waits for a gate) while
 * the others arrive, so that they wait for the same next turn.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyJsonPatch } from '../../dev/sandbox/patch.js';
import { AdapterError } from '../../shared/core/errors.js';
import type { JsonObject } from '../../shared/core/referral.js';
import type { PartnerCenterClient, PlannedWrite, ReadResult, WriteResult } from '../../shared/partner-center/client.js';
import { BATCH_CAP } from '../../shared/use-cases/referral-batch.js';
import { deferred } from '../support/scripted-partner-center.js';
import { deliver, REFERRAL_ID, referral, type Settings, type TestApp, testApp } from '../support/use-cases.js';

const REJECTED_NOTES = 'Partner Center refuses these notes';

/** Partner Center holding one referral: eTags, counted calls, and the faults a test asks for. */
class CountingPartnerCenter implements PartnerCenterClient {
  held: JsonObject;
  version = 1;
  gets = 0;
  puts = 0;
  /** The next GET waits for this (then it is cleared). */
  gate: Promise<unknown> | undefined;
  /** Called before each PUT is handled (e.g. another writer edits the referral). */
  beforePut: ((pc: CountingPartnerCenter) => void) | undefined;
  /** Errors the next PUTs throw, in order (nothing is applied). */
  putFailures: AdapterError[] = [];
  /** How Partner Center normalises what it stores (and answers) from a PUT body; nothing by default. */
  normalise: ((stored: JsonObject) => void) | undefined;

  constructor(start: JsonObject = referral()) {
    this.held = { ...structuredClone(start), eTag: '"1"' };
  }

  get calls(): number {
    return this.gets + this.puts;
  }

  /** The answer of PUT number `n` is lost after it was applied (an `upstream_timeout`, retryable). */
  loseAnswerOfPut(n: number): void {
    const real = this.putReferral.bind(this);
    this.putReferral = async (id, body, eTag) => {
      const written = await real(id, body, eTag);
      if (this.puts === n) throw new AdapterError('upstream_timeout', 'The answer was lost (in process).');
      return written;
    };
  }

  /** Another writer edits the referral: a new eTag. */
  edit(change: (ref: JsonObject) => void): void {
    change(this.held);
    this.held.eTag = `"${++this.version}"`;
  }

  async getReferral(): Promise<ReadResult> {
    this.gets++;
    const gate = this.gate;
    this.gate = undefined;
    await gate;
    await sleep(1);
    return { referral: structuredClone(this.held), eTag: String(this.held.eTag) };
  }

  /** Writes as `PUT` (the default write method). */
  writeReferral(id: string, write: PlannedWrite, eTag: string): Promise<WriteResult> {
    return this.putReferral(id, write.body, eTag);
  }

  async putReferral(_id: string, body: JsonObject, eTag: string): Promise<WriteResult> {
    this.puts++;
    await sleep(1);
    this.beforePut?.(this);
    const failure = this.putFailures.shift();
    if (failure) throw failure;
    if (eTag !== this.held.eTag) return { kind: 'precondition-failed', upstreamStatus: 412 };
    if ((body.details as JsonObject | undefined)?.notes === REJECTED_NOTES) {
      throw new AdapterError('upstream_rejected', 'Partner Center answered PUT with 400 (in process).', {
        upstreamStatus: 400,
      });
    }
    const stored = structuredClone(body);
    this.normalise?.(stored);
    this.held = { ...stored, eTag: `"${++this.version}"` };
    return { kind: 'written', referral: structuredClone(this.held), eTag: String(this.held.eTag) };
  }

  async close() {}
}

/** The same Partner Center written with `PARTNER_CENTER_WRITE_METHOD=patch`: it applies each JSON Patch (the sandbox's RFC 6902). */
class PatchingPartnerCenter extends CountingPartnerCenter {
  readonly writeMethod = 'patch';
  /** The operations of each write, in order. */
  patches: Array<PlannedWrite['operations']> = [];

  override async writeReferral(_id: string, write: PlannedWrite, eTag: string): Promise<WriteResult> {
    this.puts++;
    this.patches.push(write.operations);
    await sleep(1);
    if (eTag !== this.held.eTag) return { kind: 'precondition-failed', upstreamStatus: 412 };
    const { eTag: _held, ...doc } = this.held;
    const patched = applyJsonPatch(doc, write.operations);
    if (!patched.ok) throw new AdapterError('upstream_rejected', patched.message, { upstreamStatus: 400 });
    this.held = { ...(patched.doc as JsonObject), eTag: `"${++this.version}"` };
    return { kind: 'written', referral: structuredClone(this.held), eTag: String(this.held.eTag) };
  }
}

type Answer = Awaited<ReturnType<typeof deliver>>;

/**
 * Delivers `bodies` while an opener event holds the referral's turn, so that they all wait for the next one;
 * answers in the order of `bodies`. The opener sets `statusReason` ('opener') unless told otherwise.
 */
async function burst(
  app: TestApp,
  pc: CountingPartnerCenter,
  bodies: Array<Record<string, unknown>>,
  headers: (i: number) => Record<string, string> = () => ({}),
  openerBody: Record<string, unknown> = { referralId: REFERRAL_ID, statusReason: 'opener' },
): Promise<{ opener: Answer; answers: Answer[] }> {
  const open = deferred();
  pc.gate = open.promise;
  const getsBefore = pc.gets;
  const opener = deliver(app, { body: openerBody });
  while (pc.gets === getsBefore) await sleep(1);
  const answers = bodies.map((body, i) =>
    deliver(app, { body: { referralId: REFERRAL_ID, ...body }, headers: headers(i) }),
  );
  const queues = app.runtimeValue.referrals;
  for (let i = 0; i < 1000 && queues.waiting(REFERRAL_ID) < bodies.length; i++) await sleep(1);
  expect(queues.waiting(REFERRAL_ID)).toBe(bodies.length);
  open.resolve();
  return { opener: await opener, answers: await Promise.all(answers) };
}

/** The `from` → `to` chain of the answers' changes of one path covers them all, from `start`, in one sequence. */
function chain(answers: Answer[], path: string, start: unknown): unknown[] {
  const next = new Map<unknown, unknown>();
  for (const a of answers) {
    const change = (a.json.changes as Array<{ path: string; from: unknown; to: unknown }>).find((c) => c.path === path);
    if (change) next.set(change.from, change.to);
  }
  const seen: unknown[] = [];
  for (let value = start; next.has(value); ) {
    value = next.get(value);
    seen.push(value);
  }
  return seen;
}

function appOn(pc: CountingPartnerCenter, settings: Settings = {}): TestApp {
  return testApp(pc, { settings });
}

describe('group commit: events waiting for the same turn share one read and one write', () => {
  it('50 concurrent events on one referral: ≤ 0.2 upstream calls per event, each answered its own changes', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);
    const values = Array.from({ length: 50 }, (_, i) => 1000 + i);

    const answers = await Promise.all(
      values.map((dealValue, i) =>
        deliver(app, {
          body: { referralId: REFERRAL_ID, dealValue },
          headers: i % 2 === 0 ? { 'Idempotency-Key': `"evt-burst-${i}"` } : {},
        }),
      ),
    );

    expect(pc.calls).toBeLessThanOrEqual(10);
    expect(pc.calls / values.length).toBeLessThanOrEqual(0.2);
    for (const [i, answer] of answers.entries()) {
      expect(answer.status, answer.body).toBe(200);
      expect(answer.json.outcome).toBe('updated');
      expect(answer.json.changes).toEqual([{ path: '/details/dealValue', from: expect.anything(), to: values[i] }]);
      expect(answer.json.eventId).toBe(i % 2 === 0 ? `evt-burst-${i}` : undefined);
    }
    // Each event saw the value the one before it left: one sequence through all 50, ending where Partner Center is.
    const sequence = chain(answers, '/details/dealValue', 50000);
    expect(sequence).toHaveLength(50);
    expect((pc.held.details as JsonObject).dealValue).toBe(sequence.at(-1));
    // Every answer holds the final status and eTag of its batch; the last batch's is Partner Center's.
    expect(answers.some((a) => a.json.eTag === pc.held.eTag)).toBe(true);

    // Idempotency is per event: a redelivery of a batched event is a replay, with no upstream call.
    const before = pc.calls;
    const again = await deliver(app, {
      body: { referralId: REFERRAL_ID, dealValue: values[4] },
      headers: { 'Idempotency-Key': '"evt-burst-4"' },
    });
    expect(again.headers['Idempotent-Replayed']).toBe('true');
    expect(again.body).toBe(answers[4]?.body);
    expect(pc.calls).toBe(before);
  });

  it('the events waiting behind a running one are one batch: GET PUT for the first, GET PUT for all the others', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);

    const { opener, answers } = await burst(app, pc, [{ dealValue: 1 }, { notes: 'second' }, { name: 'Third' }]);

    expect(opener.json.outcome).toBe('updated');
    expect(pc.gets).toBe(2);
    expect(pc.puts).toBe(2);
    expect(answers.map((a) => a.json.changes)).toEqual([
      [{ path: '/details/dealValue', from: 50000, to: 1 }],
      [{ path: '/details/notes', from: 'Looking at Dynamics 365.', to: 'second' }],
      [{ path: '/name', from: 'Fabrikam supply chain modernisation', to: 'Third' }],
    ]);
    for (const a of answers) expect(a.json).toMatchObject({ outcome: 'updated', eTag: pc.held.eTag, status: 'New' });
    expect(pc.held).toMatchObject({
      name: 'Third',
      statusReason: 'opener',
      details: { dealValue: 1, notes: 'second' },
    });
  });

  it('under the patch method, a batch is one JSON Patch: one operation per path, the last value written to it', async () => {
    const pc = new PatchingPartnerCenter();
    const app = appOn(pc);

    const { answers } = await burst(app, pc, [{ dealValue: 1 }, { notes: 'second' }, { dealValue: 3, name: 'Fourth' }]);

    expect(pc.gets).toBe(2);
    expect(pc.patches).toHaveLength(2);
    expect(pc.patches[1]).toEqual([
      { op: 'replace', path: '/details/dealValue', value: 3 },
      { op: 'replace', path: '/details/notes', value: 'second' },
      { op: 'replace', path: '/name', value: 'Fourth' },
    ]);
    expect(answers.map((a) => a.json.changes)).toEqual([
      [{ path: '/details/dealValue', from: 50000, to: 1 }],
      [{ path: '/details/notes', from: 'Looking at Dynamics 365.', to: 'second' }],
      [
        { path: '/details/dealValue', from: 1, to: 3 },
        { path: '/name', from: 'Fabrikam supply chain modernisation', to: 'Fourth' },
      ],
    ]);
    for (const a of answers) expect(a.json).toMatchObject({ outcome: 'updated', eTag: pc.held.eTag });
    expect(pc.held).toMatchObject({
      name: 'Fourth',
      statusReason: 'opener',
      details: { dealValue: 3, notes: 'second' },
    });
  });

  it('an event the rules refuse in the middle gets its own 422; the events around it are applied', async () => {
    const pc = new CountingPartnerCenter(referral({ status: 'Active', substatus: 'Accepted' }));
    const app = appOn(pc);

    const { answers } = await burst(app, pc, [
      { dealValue: 1 },
      { status: 'New', substatus: 'Pending' },
      { notes: 'after the refused one' },
    ]);

    expect(answers.map((a) => a.status)).toEqual([200, 422, 200]);
    expect(answers[1]?.json).toMatchObject({ code: 'transition_not_allowed', referralId: REFERRAL_ID });
    expect(answers[2]?.json).toMatchObject({
      outcome: 'updated',
      status: 'Active',
      substatus: 'Accepted',
      changes: [{ path: '/details/notes', from: 'Looking at Dynamics 365.', to: 'after the refused one' }],
    });
    expect(pc.calls).toBe(4);
    expect(pc.held).toMatchObject({ status: 'Active', details: { dealValue: 1, notes: 'after the refused one' } });
  });

  it("a PUT Partner Center refuses (400) because of one event's value: that event fails alone, the others are applied", async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);

    const { answers } = await burst(app, pc, [{ dealValue: 1 }, { notes: REJECTED_NOTES }, { name: 'Third' }]);

    expect(answers.map((a) => a.status)).toEqual([200, 422, 200]);
    expect(answers[1]?.json.code).toBe('upstream_rejected');
    expect(answers[0]?.json.changes).toEqual([{ path: '/details/dealValue', from: 50000, to: 1 }]);
    expect(answers[2]?.json.changes).toEqual([
      { path: '/name', from: 'Fabrikam supply chain modernisation', to: 'Third' },
    ]);
    expect(pc.held).toMatchObject({ name: 'Third', details: { dealValue: 1, notes: 'Looking at Dynamics 365.' } });
    // The opener (2), the refused batch (2), then each event on its own (2 each).
    expect(pc.calls).toBe(10);
  });

  it('a 412 re-reads and re-plans the whole batch against what the other writer left', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);
    let edits = 0;
    pc.beforePut = (fake) => {
      if (fake.puts === 2 && edits++ === 0)
        fake.edit((ref) => Object.assign(ref.details as JsonObject, { dealValue: 7 }));
    };

    const { answers } = await burst(app, pc, [{ dealValue: 1 }, { dealValue: 2 }]);

    expect(answers.map((a) => a.json.changes)).toEqual([
      [{ path: '/details/dealValue', from: 7, to: 1 }],
      [{ path: '/details/dealValue', from: 1, to: 2 }],
    ]);
    expect(pc.gets).toBe(3);
    expect(pc.puts).toBe(3);
    expect((pc.held.details as JsonObject).dealValue).toBe(2);
  });

  it('a transient failure given up on answers every event of the batch the same retryable error; ids are released', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc, { UPSTREAM_MAX_RETRIES: '0' });
    pc.beforePut = (fake) => {
      if (fake.puts === 2) {
        fake.putFailures.push(new AdapterError('upstream_unavailable', 'Partner Center answered 503 (in process).'));
      }
    };
    const ids = (i: number) => ({ 'Idempotency-Key': `"evt-transient-${i}"` });

    const { answers } = await burst(app, pc, [{ dealValue: 1 }, { notes: 'n' }], ids);

    expect(answers.map((a) => [a.status, a.json.code])).toEqual([
      [503, 'upstream_unavailable'],
      [503, 'upstream_unavailable'],
    ]);
    const redelivered = await deliver(app, { body: { referralId: REFERRAL_ID, notes: 'n' }, headers: ids(1) });
    expect(redelivered.status).toBe(200);
    expect(redelivered.headers['Idempotent-Replayed']).toBeUndefined();
  });

  it('a PUT whose answer is lost but which landed is settled by the re-read: each event keeps its own changes', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);
    pc.loseAnswerOfPut(2);

    const { answers } = await burst(app, pc, [{ dealValue: 1 }, { dealValue: 2 }]);

    expect(answers.map((a) => a.json.outcome)).toEqual(['updated', 'updated']);
    expect(answers.map((a) => a.json.changes)).toEqual([
      [{ path: '/details/dealValue', from: 50000, to: 1 }],
      [{ path: '/details/dealValue', from: 1, to: 2 }],
    ]);
    expect(pc.puts).toBe(2); // never resent: the re-read shows it landed
  });

  it('a dry run is never batched, and events with occurredAt batch only with each other: a run of one kind per turn', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);

    const { answers } = await burst(app, pc, [
      { dealValue: 1 },
      { dealValue: 2 },
      { notes: 'ordered', occurredAt: '2026-11-25T10:00:00Z' },
      { dealValue: 3, dryRun: true },
      { dealValue: 4 },
      { name: 'Last' },
    ]);

    expect(answers.map((a) => a.json.outcome)).toEqual([
      'updated',
      'updated',
      'updated',
      'dry-run',
      'updated',
      'updated',
    ]);
    // Opener 2; batch [1, 2] 2; the ordered event 2; the dry run 1 (GET); batch [4, Last] 2.
    expect(pc.gets).toBe(5);
    expect(pc.puts).toBe(4);
    expect(answers[3]?.json.changes).toEqual([{ path: '/details/dealValue', from: 2, to: 3 }]);
    expect(pc.held).toMatchObject({ name: 'Last', details: { dealValue: 4, notes: 'ordered' } });
  });

  it('a waiting event whose budget runs out leaves the queue with 504; the others are applied', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);
    const open = deferred();
    pc.gate = open.promise;
    const opener = deliver(app, { body: { referralId: REFERRAL_ID, statusReason: 'opener' } });
    while (pc.gets === 0) await sleep(1);
    const waiting = deliver(app, { body: { referralId: REFERRAL_ID, dealValue: 1 } });
    const queues = app.runtimeValue.referrals;
    while (queues.waiting(REFERRAL_ID) === 0) await sleep(1);
    const { config } = app.runtimeValue;
    app.runtimeValue.config = { ...config, retry: { ...config.retry, budgetMs: 20 } };
    const late = await deliver(app, { body: { referralId: REFERRAL_ID, notes: 'too late' } });
    app.runtimeValue.config = config;
    open.resolve();

    expect(late.status).toBe(504);
    expect(late.json.code).toBe('upstream_timeout');
    expect((await waiting).json.outcome).toBe('updated');
    expect((await opener).json.outcome).toBe('updated');
    expect((pc.held.details as JsonObject).notes).toBe('Looking at Dynamics 365.');
    expect(queues.waiting(REFERRAL_ID)).toBe(0);
  });

  it('a batch runs under the earliest deadline of its events: when it runs out, every event answers 504, nothing is written', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);
    const open = deferred();
    pc.gate = open.promise;
    const opener = deliver(app, { body: { referralId: REFERRAL_ID, statusReason: 'opener' } });
    while (pc.gets === 0) await sleep(1);
    const queues = app.runtimeValue.referrals;
    const patient = deliver(app, { body: { referralId: REFERRAL_ID, dealValue: 1 } });
    while (queues.waiting(REFERRAL_ID) === 0) await sleep(1);
    const { config } = app.runtimeValue;
    app.runtimeValue.config = { ...config, retry: { ...config.retry, budgetMs: 80 } };
    const hurried = deliver(app, { body: { referralId: REFERRAL_ID, notes: 'hurried' } });
    while (queues.waiting(REFERRAL_ID) === 1) await sleep(1);
    app.runtimeValue.config = config;
    // The batch's read takes longer than the hurried event has left.
    const read = pc.getReferral.bind(pc);
    pc.getReferral = async () => {
      if (pc.gets === 1) await sleep(100);
      return read();
    };
    open.resolve();
    expect((await opener).json.outcome).toBe('updated');

    const answers = await Promise.all([patient, hurried]);
    expect(answers.map((a) => [a.status, a.json.code, a.json.retryable])).toEqual([
      [504, 'upstream_timeout', true],
      [504, 'upstream_timeout', true],
    ]);
    expect(pc.puts).toBe(1); // the opener's
    expect((pc.held.details as JsonObject).dealValue).toBe(50000);
  });

  it(`takes at most ${BATCH_CAP} events per batch`, async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);

    const { answers } = await burst(
      app,
      pc,
      Array.from({ length: BATCH_CAP + 1 }, (_, i) => ({ dealValue: i })),
    );

    expect(answers.every((a) => a.json.outcome === 'updated')).toBe(true);
    expect(pc.puts).toBe(3);
  });
});

/** A few values per field, so that events repeat, undo or overwrite each other, and some are refused. */
const bodyArb = fc
  .record(
    {
      // Valid in the contract (a Closed needs its substatus); the transition rules refuse some of them.
      state: fc.constantFrom<Record<string, string>>(
        { status: 'New' },
        { status: 'Active' },
        { status: 'New', substatus: 'Received' },
        { substatus: 'Pending' },
        { substatus: 'Won' },
        { status: 'Closed', substatus: 'Lost' },
      ),
      dealValue: fc.constantFrom(1, 2, 50000),
      notes: fc.constantFrom('Looking at Dynamics 365.', 'Call back', REJECTED_NOTES),
      name: fc.constantFrom('Fabrikam supply chain modernisation', 'Renamed'),
    },
    { requiredKeys: [] },
  )
  .map(({ state, ...rest }): Record<string, unknown> => ({ ...state, ...rest }))
  .filter((body) => Object.keys(body).length > 0);

/** What an answer says about the event, without what depends on the number of writes (eTag, final status). */
function gist(answer: Answer): unknown {
  const { status, json } = answer;
  return status === 200 ? { status, outcome: json.outcome, changes: json.changes } : { status, code: json.code };
}

describe('group commit against the same events one by one (model-based)', () => {
  it('ends Partner Center in the same state and answers each event the same, refused events included', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(referral(), referral({ status: 'Active', substatus: 'Accepted' })),
        fc.array(bodyArb, { minLength: 2, maxLength: 8 }),
        async (start, bodies) => {
          // The one difference (docs/ordering.md#batches): a value Partner Center would refuse, overwritten by a
          // later event of the same batch, is never sent, so its event is answered `updated` (see the test below).
          const rejected = bodies.findIndex((body) => body.notes === REJECTED_NOTES);
          fc.pre(rejected < 0 || !bodies.slice(rejected + 1).some((body) => body.notes !== undefined));
          const sequential = new CountingPartnerCenter(start);
          const one = appOn(sequential);
          const model: Answer[] = [];
          await deliver(one, { body: { referralId: REFERRAL_ID, statusReason: 'opener' } });
          for (const body of bodies) model.push(await deliver(one, { body: { referralId: REFERRAL_ID, ...body } }));

          const batched = new CountingPartnerCenter(start);
          const { answers } = await burst(appOn(batched), batched, bodies);

          expect(answers.map(gist)).toEqual(model.map(gist));
          const { eTag: _a, ...held } = batched.held;
          const { eTag: _b, ...expected } = sequential.held;
          expect(held).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('ordered batches (occurredAt): the same answers, end state and ordering record as one by one', async () => {
    const times = ['2026-11-25T10:00:00Z', '2026-11-25T10:00:01Z', '2026-11-25T10:00:02Z'];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(referral(), referral({ status: 'Active', substatus: 'Accepted' })),
        fc.array(
          fc
            .tuple(bodyArb, fc.constantFrom(...times))
            .map(([body, occurredAt]): Record<string, unknown> => ({ ...body, occurredAt })),
          { minLength: 2, maxLength: 8 },
        ),
        // The opener's own time: its statusReason may already be later than some of the events.
        fc.constantFrom(...times),
        async (start, bodies, openerAt) => {
          const rejected = bodies.findIndex((body) => body.notes === REJECTED_NOTES);
          fc.pre(rejected < 0 || !bodies.slice(rejected + 1).some((body) => body.notes !== undefined));
          const opener = { referralId: REFERRAL_ID, statusReason: 'opener', notes: 'opener', occurredAt: openerAt };
          const sequential = new CountingPartnerCenter(start);
          const one = appOn(sequential);
          const model: Answer[] = [];
          await deliver(one, { body: opener });
          for (const body of bodies) model.push(await deliver(one, { body: { referralId: REFERRAL_ID, ...body } }));

          const batched = new CountingPartnerCenter(start);
          const app = appOn(batched);
          const answers = await orderedBurst(app, batched, opener, bodies);

          expect(answers.map(orderedGist)).toEqual(model.map(orderedGist));
          const { eTag: _a, ...held } = batched.held;
          const { eTag: _b, ...expected } = sequential.held;
          expect(held).toEqual(expected);
          const recordOf = async (a: TestApp) =>
            (await a.runtimeValue.idempotency.readOrdering(REFERRAL_ID, {})).record;
          expect(await recordOf(app)).toEqual(await recordOf(one));
          // One read and at most one write for the whole batch, unless a refused write made it go one by one.
          if (rejected < 0) expect(batched.calls).toBeLessThanOrEqual(4);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('an ordered batch: later events win per field whatever the arrival order, each answered what it was', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);
    const opener = { referralId: REFERRAL_ID, statusReason: 'opener', occurredAt: '2026-11-25T09:00:00Z' };

    const answers = await orderedBurst(app, pc, opener, [
      { dealValue: 3, notes: 'newest', occurredAt: '2026-11-25T10:00:03Z' },
      { dealValue: 1, occurredAt: '2026-11-25T10:00:01Z' },
      { notes: 'older', name: 'Renamed', occurredAt: '2026-11-25T10:00:02Z' },
    ]);

    expect(pc.gets).toBe(2);
    expect(pc.puts).toBe(2);
    expect(answers.map((a) => a.json.outcome)).toEqual(['updated', 'stale', 'updated']);
    expect(answers[1]?.json).toMatchObject({
      lastAppliedOccurredAt: '2026-11-25T10:00:03.000Z',
      superseded: [{ path: '/details/dealValue', occurredAt: '2026-11-25T10:00:03.000Z' }],
    });
    expect(answers[2]?.json).toMatchObject({
      changes: [{ path: '/name', from: 'Fabrikam supply chain modernisation', to: 'Renamed' }],
      superseded: [{ path: '/details/notes', occurredAt: '2026-11-25T10:00:03.000Z' }],
    });
    expect(pc.held).toMatchObject({ name: 'Renamed', details: { dealValue: 3, notes: 'newest' } });
    const { record } = await app.runtimeValue.idempotency.readOrdering(REFERRAL_ID, {});
    expect(record).toEqual({
      statusReason: { at: '2026-11-25T09:00:00.000Z' },
      dealValue: { at: '2026-11-25T10:00:03.000Z' },
      notes: { at: '2026-11-25T10:00:03.000Z' },
      name: { at: '2026-11-25T10:00:02.000Z' },
    });
  });

  it("an ordered batch waits for another event's live claim on one of its fields, then applies on top of it", async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);
    const store = app.runtimeValue.idempotency;
    // Another instance claimed notes at 10:00:05 and its PUT is in flight (the claim lapses in 300 ms).
    const claimed = await store.readOrdering(REFERRAL_ID, {});
    const until = Date.now() + 300;
    await store.writeOrdering(
      REFERRAL_ID,
      { notes: { at: '2026-11-25T10:00:05Z', pending: { by: 'elsewhere', key: 'k', until } } },
      claimed.version,
      {},
    );
    const opener = { referralId: REFERRAL_ID, statusReason: 'opener', occurredAt: '2026-11-25T09:00:00Z' };

    const answers = await orderedBurst(app, pc, opener, [
      { notes: 'older than the claim', occurredAt: '2026-11-25T10:00:01Z' },
      { dealValue: 9, occurredAt: '2026-11-25T10:00:02Z' },
    ]);

    // The claim lapsed without its value landing: rolled back, so both events apply.
    expect(Date.now()).toBeGreaterThan(until);
    expect(answers.map((a) => a.json.outcome)).toEqual(['updated', 'updated']);
    expect(pc.held).toMatchObject({ details: { dealValue: 9, notes: 'older than the claim' } });
    expect(pc.puts).toBe(2);
  });

  it('an ordered batch whose PUT landed but whose answer was lost: settled by the re-read, the claims confirmed', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);
    pc.loseAnswerOfPut(2);
    const opener = { referralId: REFERRAL_ID, statusReason: 'opener', occurredAt: '2026-11-25T09:00:00Z' };

    const answers = await orderedBurst(app, pc, opener, [
      { dealValue: 1, occurredAt: '2026-11-25T10:00:01Z' },
      { notes: 'n', occurredAt: '2026-11-25T10:00:02Z' },
    ]);

    expect(answers.map((a) => a.json.outcome)).toEqual(['updated', 'updated']);
    expect(pc.puts).toBe(2); // never resent
    const { record } = await app.runtimeValue.idempotency.readOrdering(REFERRAL_ID, {});
    expect(record).toEqual({
      statusReason: { at: '2026-11-25T09:00:00.000Z' },
      dealValue: { at: '2026-11-25T10:00:01.000Z' },
      notes: { at: '2026-11-25T10:00:02.000Z' },
    });
  });

  it('an ordered batch whose PUT Partner Center answers with a normalised value: its claims still stand', async () => {
    const pc = new CountingPartnerCenter();
    pc.normalise = (stored) => {
      const details = stored.details as JsonObject;
      if (typeof details.notes === 'string') details.notes = details.notes.trim();
    };
    const app = appOn(pc);
    const opener = { referralId: REFERRAL_ID, statusReason: 'opener', occurredAt: '2026-11-25T09:00:00Z' };

    const answers = await orderedBurst(app, pc, opener, [
      { notes: 'newest ', occurredAt: '2026-11-25T10:00:03Z' },
      { notes: 'older', occurredAt: '2026-11-25T10:00:01Z' },
    ]);
    const between = await deliver(app, {
      body: { referralId: REFERRAL_ID, notes: 'between', occurredAt: '2026-11-25T10:00:02Z' },
    });

    expect(answers.map((a) => a.json.outcome)).toEqual(['updated', 'stale']);
    // The 10:00:03 claim was confirmed although Partner Center echoed "newest" for "newest ": 10:00:02 is stale.
    expect(between.json.outcome).toBe('stale');
    expect((pc.held.details as JsonObject).notes).toBe('newest');
  });

  it('an ordered batch refused for good gives its claims back: the record is as before, nothing pending', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);
    pc.beforePut = (fake) => {
      if (fake.puts === 2) fake.putFailures.push(new AdapterError('referral_not_found', 'Gone (in process).'));
    };
    const opener = { referralId: REFERRAL_ID, statusReason: 'opener', occurredAt: '2026-11-25T09:00:00Z' };

    const answers = await orderedBurst(app, pc, opener, [
      { dealValue: 1, occurredAt: '2026-11-25T10:00:01Z' },
      { notes: 'n', occurredAt: '2026-11-25T10:00:02Z' },
    ]);

    expect(answers.map((a) => a.status)).toEqual([404, 404]);
    const { record } = await app.runtimeValue.idempotency.readOrdering(REFERRAL_ID, {});
    expect(record).toEqual({ statusReason: { at: '2026-11-25T09:00:00.000Z' } });
  });

  it('a redelivery in an ordered batch finds its own earlier claim: the turn goes one by one, it takes the claim over', async () => {
    const pc = new CountingPartnerCenter();
    // A budget shorter than the earlier claim's life: waiting for that claim to lapse would answer 409.
    const app = appOn(pc, {
      UPSTREAM_BUDGET_MS: '3000',
      UPSTREAM_REQUEST_TIMEOUT_MS: '2000',
      UPSTREAM_MAX_RETRIES: '0',
    });
    const redelivered = { notes: 'again', occurredAt: '2026-11-25T10:00:01Z' };
    const headers = { 'Idempotency-Key': '"evt-own-claim"' };
    // The first delivery's PUT is sent and its answer lost: its claim stays pending (it may still land).
    pc.putFailures.push(new AdapterError('upstream_timeout', 'No answer (in process).'));
    const first = await deliver(app, { body: { referralId: REFERRAL_ID, ...redelivered }, headers });
    expect(first.status).toBe(504);
    const before = await app.runtimeValue.idempotency.readOrdering(REFERRAL_ID, {});
    expect(before.record.notes?.pending).toBeDefined();

    const opener = { referralId: REFERRAL_ID, statusReason: 'opener', occurredAt: '2026-11-25T09:00:00Z' };
    const answers = await orderedBurst(
      app,
      pc,
      opener,
      [redelivered, { dealValue: 2, occurredAt: '2026-11-25T10:00:02Z' }],
      (i) => (i === 0 ? headers : {}),
    );

    expect(answers.map((a) => [a.status, a.json.outcome])).toEqual([
      [200, 'updated'],
      [200, 'updated'],
    ]);
    expect(pc.held).toMatchObject({ details: { notes: 'again', dealValue: 2 } });
  });

  it("an ordered batch's write lands unanswered and the batch gives up: each event's redelivery takes its own claim over", async () => {
    const pc = new CountingPartnerCenter();
    // The claims outlive the budget (request timeout + 5 s): waiting for them to lapse would answer 409.
    const app = appOn(pc, {
      UPSTREAM_BUDGET_MS: '3000',
      UPSTREAM_REQUEST_TIMEOUT_MS: '2000',
      UPSTREAM_MAX_RETRIES: '0',
    });
    pc.loseAnswerOfPut(2);
    const events = [
      { notes: 'a', occurredAt: '2026-11-25T10:00:01Z' },
      { dealValue: 2, occurredAt: '2026-11-25T10:00:02Z' },
    ];
    const headers = (i: number) => ({ 'Idempotency-Key': `"evt-batch-lost-${i}"` });
    const opener = { referralId: REFERRAL_ID, statusReason: 'opener', occurredAt: '2026-11-25T09:00:00Z' };
    const first = await orderedBurst(app, pc, opener, events, headers);
    expect(first.map((a) => a.status)).toEqual([504, 504]);
    const { record } = await app.runtimeValue.idempotency.readOrdering(REFERRAL_ID, {});
    expect([record.notes?.pending, record.dealValue?.pending]).toEqual([expect.anything(), expect.anything()]);
    expect(record.notes?.pending?.by).not.toBe(record.dealValue?.pending?.by); // each event's own claim

    const again = await Promise.all(
      events.map((body, i) => deliver(app, { body: { referralId: REFERRAL_ID, ...body }, headers: headers(i) })),
    );

    // Their values had landed: each takes its claim over and finds them there, with no wait for the claims to lapse.
    expect(again.map((a) => [a.status, a.json.outcome])).toEqual([
      [200, 'unchanged'],
      [200, 'unchanged'],
    ]);
    expect(pc.puts).toBe(2);
    const after = await app.runtimeValue.idempotency.readOrdering(REFERRAL_ID, {});
    expect(after.record).toMatchObject({
      notes: { at: '2026-11-25T10:00:01.000Z' },
      dealValue: { at: '2026-11-25T10:00:02.000Z' },
    });
    expect(after.record.notes?.pending ?? after.record.dealValue?.pending).toBeUndefined();
  });

  it('the difference: a value Partner Center would refuse, overwritten later in the batch, is never sent', async () => {
    const pc = new CountingPartnerCenter();
    const app = appOn(pc);

    const { answers } = await burst(app, pc, [{ notes: REJECTED_NOTES }, { notes: 'fine' }]);

    // One by one, the first would be refused (422 upstream_rejected) and the second applied: the same end state.
    expect(answers.map((a) => [a.status, a.json.outcome])).toEqual([
      [200, 'updated'],
      [200, 'updated'],
    ]);
    expect((pc.held.details as JsonObject).notes).toBe('fine');
  });
});

/** {@link burst} for ordered events: the opener (with its own `occurredAt`) holds the turn while they arrive. */
async function orderedBurst(
  app: TestApp,
  pc: CountingPartnerCenter,
  opener: Record<string, unknown>,
  bodies: Array<Record<string, unknown>>,
  headers: (i: number) => Record<string, string> = () => ({}),
): Promise<Answer[]> {
  const { opener: first, answers } = await burst(app, pc, bodies, headers, opener);
  expect(first.status).toBe(200);
  return answers;
}

/** {@link gist} with what ordering adds: the superseded fields and the time of the latest of them. */
function orderedGist(answer: Answer): unknown {
  const { json } = answer;
  return {
    ...(gist(answer) as object),
    superseded: json.superseded,
    lastAppliedOccurredAt: json.lastAppliedOccurredAt,
  };
}
