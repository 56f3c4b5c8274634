/**
 * The sandbox's random fault mode, over real HTTP on loopback. A reliability suite drives many events
 * through the app under these faults and then compares the store with a model, using faultLog, stats()
 * and appliedWrites(); these tests check that each of those tells the truth about what was stored.
 */
import { describe, expect, it } from 'vitest';
import { RandomFaultSource } from '../../dev/sandbox/random-faults.js';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import type { FaultLogEntry, RandomFaultKind } from '../../dev/sandbox/server.js';
import {
  type Answer,
  call,
  expectPartnerError,
  getReferral,
  itemPath,
  type Json,
  obj,
  patchReferral,
  putReferral,
  QUOTED_ETAG,
  REFERRALS,
  SEVEN_DIGIT_UTC,
  stored,
  str,
  useSandbox,
} from './http.js';

const sandbox = useSandbox();

const ID = SEED_IDS.newPending;
/** Seeded with customAttributes { crmSync, tags }, which a concurrent edit must keep. */
const WITH_ATTRIBUTES = SEED_IDS.newReceived;

/** The fields the adapter writes (docs/partner-center-api.md#fields-the-adapter-writes). */
function adapterFields(doc: Json): Json {
  const details = doc.details === null || doc.details === undefined ? {} : obj(doc.details);
  return {
    status: doc.status,
    substatus: doc.substatus,
    statusReason: doc.statusReason,
    name: doc.name,
    externalReferenceId: doc.externalReferenceId,
    dealValue: details.dealValue,
    currency: details.currency,
    closingDateTime: details.closingDateTime,
    notes: details.notes,
  };
}

/** The answer, or 'dropped' when the connection was destroyed without one. */
async function attempt(request: Promise<Answer>): Promise<Answer | 'dropped'> {
  return request.catch(() => 'dropped' as const);
}

function statusOf(outcome: Answer | 'dropped'): number | 'dropped' {
  return outcome === 'dropped' ? outcome : outcome.status;
}

/** A PUT that passes every check when unfaulted: the stored body with its current eTag, renamed. */
function freshPut(id: string, name: string): Promise<Answer> {
  const { eTag, ...body } = stored(sandbox, id);
  return putReferral(sandbox, id, { ...body, name }, String(eTag));
}

/** A fixed mix of GET, list, PUT and PATCH requests, sent one after another; returns what the client saw. */
async function drive(rounds: number): Promise<Array<number | 'dropped'>> {
  const seen: Array<number | 'dropped'> = [];
  for (let i = 0; i < rounds; i += 1) {
    seen.push(statusOf(await attempt(getReferral(sandbox, ID))));
    seen.push(statusOf(await attempt(freshPut(ID, `Round ${i}`))));
    seen.push(statusOf(await attempt(call(sandbox, 'GET', `${REFERRALS}?$top=2`))));
    const notes = [{ op: 'replace', path: '/details/notes', value: `note ${i}` }];
    seen.push(statusOf(await attempt(patchReferral(sandbox, ID, notes))));
  }
  return seen;
}

function counterOf(id: string): unknown {
  const attributes = stored(sandbox, id).customAttributes;
  return attributes === undefined ? undefined : obj(attributes).externalEditCounter;
}

describe('random faults: rate', () => {
  it('rate 0 fires nothing, though requests are still counted', async () => {
    sandbox.setRandomFaults({ rate: 0, seed: 7 });
    const seen = await drive(5);
    expect(seen).toEqual(Array.from({ length: 5 }, () => [200, 200, 200, 204]).flat());
    expect(sandbox.faultLog).toEqual([]);
    expect(sandbox.stats()).toMatchObject({ requests: 20, puts: 5, appliedPuts: 5, faults: 0, rejected412: 0 });
    expect(sandbox.appliedWrites(ID)).toHaveLength(10);
  });

  it('draws close to `rate` of the requests, every configured kind about as often', () => {
    const source = new RandomFaultSource({ rate: 0.3, seed: 99 });
    const counts = new Map<string, number>();
    const n = 12_000;
    for (let i = 0; i < n; i += 1) {
      const kind = source.next({ method: 'PUT', referralStored: true })?.kind ?? 'none';
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
    expect((n - (counts.get('none') ?? 0)) / n).toBeCloseTo(0.3, 1);
    for (const kind of ['throttle', 'server-error', 'reset', 'lost-response', 'latency', 'concurrent-edit']) {
      expect((counts.get(kind) ?? 0) / n, kind).toBeGreaterThan(0.04);
      expect((counts.get(kind) ?? 0) / n, kind).toBeLessThan(0.06);
    }
  });

  it('refuses a config it cannot honour', () => {
    expect(() => sandbox.setRandomFaults({ rate: 1.5, seed: 1 })).toThrow(RangeError);
    expect(() => sandbox.setRandomFaults({ rate: Number.NaN, seed: 1 })).toThrow(RangeError);
    expect(() => sandbox.setRandomFaults({ rate: 0.5, seed: 1.5 })).toThrow(RangeError);
    expect(() => sandbox.setRandomFaults({ rate: 0.5, seed: 1, kinds: [] })).toThrow(RangeError);
    const bogus = ['throttle', 'meteor'] as unknown as RandomFaultKind[];
    expect(() => sandbox.setRandomFaults({ rate: 0.5, seed: 1, kinds: bogus })).toThrow(/meteor/);
    expect(() => sandbox.setRandomFaults({ rate: 0.5, seed: 1, maxLatencyMs: -1 })).toThrow(RangeError);
  });
});

describe('random faults: rate 1 with one kind', () => {
  it("'throttle': 429 in the throttling shape with Retry-After 0 or 1, nothing applied", async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 3, kinds: ['throttle'] });
    const before = stored(sandbox, ID);
    const retryAfters = new Set<string | null>();
    for (let i = 0; i < 12; i += 1) {
      const answer = i % 2 === 0 ? await getReferral(sandbox, ID) : await freshPut(ID, 'Throttled');
      expect(answer.status).toBe(429);
      const retryAfter = answer.headers.get('retry-after');
      retryAfters.add(retryAfter);
      expect(answer.body).toStrictEqual({
        statusCode: 429,
        message: `Rate limit is exceeded. Try again in ${retryAfter} seconds.`,
      });
    }
    expect([...retryAfters].sort()).toEqual(['0', '1']);
    expect(stored(sandbox, ID)).toStrictEqual(before);
    expect(sandbox.faultLog.map((entry) => [entry.kind, entry.applied])).toEqual(
      Array.from({ length: 12 }, () => ['throttle', false]),
    );
  });

  it("'server-error': 500, 502 or 503 with the Partner error body, nothing applied", async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 4, kinds: ['server-error'] });
    const before = stored(sandbox, ID);
    const statuses = new Set<number>();
    for (let i = 0; i < 15; i += 1) {
      const answer = i % 3 === 0 ? await freshPut(ID, 'Failed') : await getReferral(sandbox, ID);
      statuses.add(answer.status);
      expectPartnerError(answer, answer.status, answer.status === 503 ? 'serviceNotAvailable' : 'generalException');
    }
    expect([...statuses].sort()).toEqual([500, 502, 503]);
    expect(stored(sandbox, ID)).toStrictEqual(before);
    expect(sandbox.appliedWrites(ID)).toEqual([]);
  });

  it("'reset': the connection is dropped without an answer, nothing applied", async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 5, kinds: ['reset'] });
    const before = stored(sandbox, ID);
    expect(await attempt(getReferral(sandbox, ID))).toBe('dropped');
    expect(await attempt(freshPut(ID, 'Dropped'))).toBe('dropped');
    expect(await attempt(patchReferral(sandbox, ID, [{ op: 'replace', path: '/name', value: 'x' }]))).toBe('dropped');
    expect(stored(sandbox, ID)).toStrictEqual(before);
    expect(sandbox.faultLog.map((entry) => `${entry.method} ${entry.kind} ${entry.applied}`)).toEqual([
      'GET reset false',
      'PUT reset false',
      'PATCH reset false',
    ]);
  });

  it("'lost-response': leaves GETs alone; a PUT or PATCH is stored, then the connection is dropped", async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 6, kinds: ['lost-response'] });
    expect((await getReferral(sandbox, ID)).status).toBe(200);
    expect((await call(sandbox, 'GET', REFERRALS)).status).toBe(200);

    const first = stored(sandbox, ID);
    expect(await attempt(freshPut(ID, 'Stored but unanswered'))).toBe('dropped');
    const afterPut = stored(sandbox, ID);
    expect(afterPut.name).toBe('Stored but unanswered');
    expect(afterPut.eTag).toMatch(QUOTED_ETAG);
    expect(afterPut.eTag).not.toBe(first.eTag);
    expect(afterPut.updatedDateTime).toMatch(SEVEN_DIGIT_UTC);

    const patch = [{ op: 'replace', path: '/details/notes', value: 'patched, unanswered' }];
    expect(await attempt(patchReferral(sandbox, ID, patch))).toBe('dropped');
    const afterPatch = stored(sandbox, ID);
    expect(obj(afterPatch.details).notes).toBe('patched, unanswered');

    expect(sandbox.faultLog).toEqual([
      { seq: 3, method: 'PUT', referralId: ID, kind: 'lost-response', applied: true },
      { seq: 4, method: 'PATCH', referralId: ID, kind: 'lost-response', applied: true },
    ]);
    const writes = sandbox.appliedWrites(ID);
    expect(writes.map((w) => [w.seq, w.method, w.replacedETag, w.eTag, w.fault])).toEqual([
      [3, 'PUT', first.eTag, afterPut.eTag, 'lost-response'],
      [4, 'PATCH', afterPut.eTag, afterPatch.eTag, 'lost-response'],
    ]);
    expect(writes[0]?.fields).toMatchObject({ name: 'Stored but unanswered', status: 'New', substatus: 'Pending' });
    expect(obj(writes[1]?.fields.details).notes).toBe('patched, unanswered');
    expect(sandbox.stats()).toMatchObject({ puts: 1, appliedPuts: 1, patches: 1, appliedPatches: 1 });
  });

  it("'lost-response' on a write the API refuses: the connection is dropped and applied is false", async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 6, kinds: ['lost-response'] });
    const before = stored(sandbox, ID);
    const { eTag: _eTag, ...body } = before;
    expect(await attempt(putReferral(sandbox, ID, body, '"stale"'))).toBe('dropped');
    expect(stored(sandbox, ID)).toStrictEqual(before);
    expect(sandbox.faultLog.map((entry) => entry.applied)).toEqual([false]);
    expect(sandbox.stats()).toMatchObject({ puts: 1, appliedPuts: 0, rejected412: 1 });
    expect(sandbox.appliedWrites(ID)).toEqual([]);
  });

  it("'latency': waits the drawn time (5..maxLatencyMs), then handles the request normally", async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 8, kinds: ['latency'], maxLatencyMs: 40 });
    const elapsed: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const started = performance.now();
      const answer = i === 3 ? await freshPut(ID, 'Slow but stored') : await getReferral(sandbox, ID);
      elapsed.push(performance.now() - started);
      expect(answer.status, answer.text).toBe(200);
    }
    expect(stored(sandbox, ID).name).toBe('Slow but stored');
    const log = sandbox.faultLog;
    expect(log.map((entry) => [entry.kind, entry.applied])).toEqual([
      ['latency', false],
      ['latency', false],
      ['latency', false],
      ['latency', true],
    ]);
    log.forEach((entry, i) => {
      const ms = Number(/^(\d+) ms$/.exec(entry.detail ?? '')?.[1]);
      expect(ms).toBeGreaterThanOrEqual(5);
      expect(ms).toBeLessThanOrEqual(40);
      expect(elapsed[i]).toBeGreaterThanOrEqual(ms - 1);
    });
    expect(new Set(log.map((entry) => entry.detail)).size).toBeGreaterThan(1);
  });

  it("'concurrent-edit': leaves GETs alone; a fresh PUT gets 412 and only the external counter moves", async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 9, kinds: ['concurrent-edit'] });
    expect((await getReferral(sandbox, WITH_ATTRIBUTES)).status).toBe(200);
    const original = stored(sandbox, WITH_ATTRIBUTES);

    let previous = original;
    for (let i = 1; i <= 3; i += 1) {
      expectPartnerError(await freshPut(WITH_ATTRIBUTES, 'Never stored'), 412, 'preconditionFailed');
      const now = stored(sandbox, WITH_ATTRIBUTES);
      expect(now.eTag).toMatch(QUOTED_ETAG);
      expect(now.eTag).not.toBe(previous.eTag);
      expect(now.updatedDateTime).toMatch(SEVEN_DIGIT_UTC);
      expect(now.updatedDateTime).not.toBe(previous.updatedDateTime);
      expect(counterOf(WITH_ATTRIBUTES)).toBe(i);
      previous = now;
    }

    const after = stored(sandbox, WITH_ATTRIBUTES);
    expect(adapterFields(after)).toStrictEqual(adapterFields(original));
    // Nothing else changed either: the edit only adds the counter next to the existing attributes.
    const { eTag: _a, updatedDateTime: _b, customAttributes, ...rest } = after;
    const { eTag: _c, updatedDateTime: _d, customAttributes: originalAttributes, ...originalRest } = original;
    expect(rest).toStrictEqual(originalRest);
    expect(customAttributes).toStrictEqual({ ...obj(originalAttributes), externalEditCounter: 3 });

    expect(sandbox.stats()).toMatchObject({
      puts: 3,
      appliedPuts: 0,
      rejected412: 3,
      externalEdits: { [WITH_ATTRIBUTES]: 3 },
    });
    expect(sandbox.appliedWrites(WITH_ATTRIBUTES)).toEqual([]);
    expect(sandbox.faultLog.map((entry) => `${entry.seq} ${entry.method} ${entry.kind} ${entry.applied}`)).toEqual([
      '2 PUT concurrent-edit false',
      '3 PUT concurrent-edit false',
      '4 PUT concurrent-edit false',
    ]);
  });

  it("'concurrent-edit' on a PATCH: 412 under the If-Match read before it; without If-Match it is written over", async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 9, kinds: ['concurrent-edit'] });
    const { eTag } = stored(sandbox, WITH_ATTRIBUTES);
    const patch = [{ op: 'replace', path: '/name', value: 'Never stored' }];
    expectPartnerError(
      await patchReferral(sandbox, WITH_ATTRIBUTES, patch, { 'if-match': str(eTag) }),
      412,
      'preconditionFailed',
    );
    expect(stored(sandbox, WITH_ATTRIBUTES).name).not.toBe('Never stored');
    expect(counterOf(WITH_ATTRIBUTES)).toBe(1);

    const unconditional = [{ op: 'replace', path: '/name', value: 'Written over the edit' }];
    expect((await patchReferral(sandbox, WITH_ATTRIBUTES, unconditional)).status).toBe(204);
    expect(stored(sandbox, WITH_ATTRIBUTES).name).toBe('Written over the edit');
    expect(counterOf(WITH_ATTRIBUTES)).toBe(2);
    expect(sandbox.faultLog.map((entry) => `${entry.method} ${entry.kind} ${entry.applied}`)).toEqual([
      'PATCH concurrent-edit false',
      'PATCH concurrent-edit true',
    ]);
  });

  it("'concurrent-edit' creates customAttributes when the referral has none, and skips unknown referrals", async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 10, kinds: ['concurrent-edit'] });
    expect(stored(sandbox, ID).customAttributes).toBeUndefined();
    expectPartnerError(await freshPut(ID, 'x'), 412, 'preconditionFailed');
    expect(stored(sandbox, ID).customAttributes).toStrictEqual({ externalEditCounter: 1 });

    const unknown = '00000000-0000-4000-8000-000000000000';
    expectPartnerError(await putReferral(sandbox, unknown, { id: unknown }, '"x"'), 404, 'itemNotFound');
    expect(sandbox.faultLog).toHaveLength(1);
    expect(sandbox.stats().externalEdits).toStrictEqual({ [ID]: 1 });
  });
});

describe('random faults: replay and bookkeeping', () => {
  const config = { rate: 0.5, seed: 20_260_101, maxLatencyMs: 10 };
  const shape = (log: ReadonlyArray<FaultLogEntry>) => log.map((e) => `${e.seq} ${e.method} ${e.kind} ${e.detail}`);

  it('replays the same faults for the same seed and requests, and different ones for another seed', async () => {
    sandbox.setRandomFaults(config);
    const seenFirst = await drive(12);
    const logFirst = sandbox.faultLog;

    sandbox.reset();
    sandbox.setRandomFaults(config);
    const seenAgain = await drive(12);
    expect(sandbox.faultLog).toStrictEqual(logFirst);
    expect(seenAgain).toEqual(seenFirst);
    // Enough faults of enough kinds that the comparison means something.
    expect(logFirst.length).toBeGreaterThan(12);
    expect(new Set(logFirst.map((entry) => entry.kind)).size).toBeGreaterThanOrEqual(4);

    sandbox.reset();
    sandbox.setRandomFaults({ ...config, seed: config.seed + 1 });
    await drive(12);
    expect(shape(sandbox.faultLog)).not.toEqual(shape(logFirst));
  });

  it('gives injected rules precedence without shifting the random sequence', async () => {
    sandbox.setRandomFaults(config);
    await drive(3);
    const withoutRule = shape(sandbox.faultLog);

    sandbox.reset();
    sandbox.setRandomFaults(config);
    sandbox.injectFault({ method: 'GET', referralId: ID, action: { type: 'status', status: 418 } });
    const seen = await drive(3);
    expect(seen[0]).toBe(418);
    const withRule = shape(sandbox.faultLog);
    // The first request was the rule's; every later request drew exactly what it drew without the rule.
    expect(withRule[0]).toBe('1 GET rule status 418');
    expect(withRule.slice(1)).toEqual(withoutRule.filter((line) => !line.startsWith('1 ')));
    expect(sandbox.stats().faultsByKind.rule).toBe(1);
  });

  it('keeps faultLog, stats(), appliedWrites() and the store consistent with each other', async () => {
    // Seed 5 draws, among others, several concurrent edits and lost responses on the PUTs of this run.
    sandbox.setRandomFaults({ rate: 0.6, seed: 5, maxLatencyMs: 10 });
    await drive(20);
    const log = sandbox.faultLog;
    const stats = sandbox.stats();
    const writes = sandbox.appliedWrites(ID);
    const requests = sandbox.requests;

    expect(stats.requests).toBe(requests.length);
    expect(log.map((entry) => entry.seq)).toEqual([...log.map((entry) => entry.seq)].sort((a, b) => a - b));
    expect(stats.faults).toBe(log.length);
    const byKind: Record<string, number> = {};
    for (const entry of log) byKind[entry.kind] = (byKind[entry.kind] ?? 0) + 1;
    expect(Object.fromEntries(Object.entries(stats.faultsByKind).filter(([, n]) => n > 0))).toStrictEqual(byKind);
    expect(stats.faultsByKind.rule).toBe(0);
    for (const entry of log) expect(requests[entry.seq - 1]?.method).toBe(entry.method);

    expect(stats.puts).toBe(requests.filter((r) => r.method === 'PUT').length);
    expect(stats.patches).toBe(requests.filter((r) => r.method === 'PATCH').length);
    expect(stats.appliedPuts).toBe(writes.filter((w) => w.method === 'PUT').length);
    expect(stats.appliedPatches).toBe(writes.filter((w) => w.method === 'PATCH').length);
    // Every PUT carried the current eTag, so a PUT is stored unless a fault kept it from being handled
    // (throttle, server-error, reset) or a concurrent edit made it stale (412).
    const blocked = log.filter((e) => e.method === 'PUT' && !['lost-response', 'latency'].includes(e.kind));
    expect(stats.appliedPuts).toBe(stats.puts - blocked.length);
    const edits = log.filter((entry) => entry.kind === 'concurrent-edit').length;
    expect(edits).toBeGreaterThanOrEqual(2);
    // This mix sends its PATCHes without If-Match: an edit before one of them is written over, not a 412.
    const editedPuts = log.filter((entry) => entry.kind === 'concurrent-edit' && entry.method === 'PUT').length;
    expect(stats.rejected412).toBe(editedPuts);
    expect(stats.externalEdits).toStrictEqual({ [ID]: edits });
    expect(counterOf(ID)).toBe(edits);
    // A fault entry says applied exactly when its request's write is among the applied writes.
    const appliedSeqs = new Set(writes.map((w) => w.seq));
    for (const entry of log) expect(entry.applied, `seq ${entry.seq}`).toBe(appliedSeqs.has(entry.seq));
    expect(log.some((entry) => entry.kind === 'lost-response' && entry.applied)).toBe(true);
    // The last applied write is what the store holds.
    const last = writes.at(-1);
    expect(last?.eTag).toBe(stored(sandbox, ID).eTag);
    const fields = obj(last?.fields, 'last write fields');
    expect(adapterFields(fields)).toStrictEqual(adapterFields(stored(sandbox, ID)));
    // Only the adapter-written fields are reported.
    const topLevel = ['status', 'substatus', 'statusReason', 'name', 'externalReferenceId', 'details'];
    expect(Object.keys(fields).filter((key) => !topLevel.includes(key))).toEqual([]);
    const inDetails = ['dealValue', 'currency', 'closingDateTime', 'notes'];
    expect(Object.keys(obj(fields.details)).filter((key) => !inDetails.includes(key))).toEqual([]);
    expect(obj(fields.details).notes).toMatch(/^note \d+$/);
  });

  it('appliedWrites() hands out copies, matched case-insensitively', async () => {
    expect((await freshPut(ID, 'Copy me')).status).toBe(200);
    const [write] = sandbox.appliedWrites(ID.toUpperCase());
    expect(write?.fields.name).toBe('Copy me');
    (write?.fields as Json).name = 'Mutated';
    expect(sandbox.appliedWrites(ID)[0]?.fields.name).toBe('Copy me');
  });

  it('setRandomFaults(undefined) stops the faults; clearFaults() only removes rules', async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 1, kinds: ['server-error'] });
    sandbox.clearFaults();
    expect((await getReferral(sandbox, ID)).status).toBeGreaterThanOrEqual(500);
    sandbox.setRandomFaults(undefined);
    expect((await getReferral(sandbox, ID)).status).toBe(200);
    expect(sandbox.faultLog).toHaveLength(1);
  });

  it('reset() clears the log, the stats, the applied writes and the random mode', async () => {
    sandbox.setRandomFaults({ rate: 1, seed: 2, kinds: ['lost-response', 'concurrent-edit'] });
    await attempt(freshPut(ID, 'Before reset'));
    await attempt(freshPut(ID, 'Before reset'));
    await attempt(call(sandbox, 'PATCH', itemPath(ID), { body: [{ op: 'add', path: '/name', value: 'y' }] }));
    expect(sandbox.faultLog.length).toBe(3);
    expect(sandbox.stats().requests).toBe(3);

    sandbox.reset();
    expect(sandbox.faultLog).toEqual([]);
    expect(sandbox.appliedWrites(ID)).toEqual([]);
    expect(sandbox.stats()).toStrictEqual({
      requests: 0,
      puts: 0,
      appliedPuts: 0,
      patches: 0,
      appliedPatches: 0,
      rejected412: 0,
      throttled: 0,
      faults: 0,
      faultsByKind: {
        rule: 0,
        throttle: 0,
        'server-error': 0,
        reset: 0,
        'lost-response': 0,
        latency: 0,
        'concurrent-edit': 0,
      },
      externalEdits: {},
    });
    expect((await freshPut(ID, 'After reset')).status).toBe(200);
    expect(sandbox.faultLog).toEqual([]);
    expect(sandbox.stats()).toMatchObject({ requests: 1, puts: 1, appliedPuts: 1 });
  });
});
