import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyJsonPatch } from '../../dev/sandbox/patch.js';
import { checkPatchPaths } from '../../dev/sandbox/validation.js';
import { AdapterError } from '../../shared/core/errors.js';
import { buildPutBody, type Change, desiredValues, diff, patchOperations } from '../../shared/core/merge.js';
import { planBatch } from '../../shared/core/plan-batch.js';
import { planUpdate } from '../../shared/core/plan-update.js';
import type { JsonObject, JsonValue } from '../../shared/core/referral.js';

const WRITTEN_TOP = ['status', 'substatus', 'statusReason', 'name', 'externalReferenceId'];
const WRITTEN_DETAILS = ['dealValue', 'currency', 'closingDateTime', 'notes'];

const key = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'partnerRole', 'solutionAreas', 'eTag'),
);
const extra = fc.dictionary(key, fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>, { maxKeys: 6 });
const dateTime = fc.constantFrom(
  '2026-12-31T00:00:00Z',
  '2026-12-31T00:00:00.0000000Z',
  '2027-01-15T00:00:00Z',
  '2018-11-06T18:40:42.6178337Z',
);
const state = fc.constantFrom(
  { status: 'New', substatus: 'Pending' },
  { status: 'New', substatus: 'Received' },
  { status: 'Active', substatus: 'Accepted' },
);

const referralArb: fc.Arbitrary<JsonObject> = fc
  .record({
    extraTop: extra,
    extraDetails: extra,
    state,
    detailsKind: fc.constantFrom('object', 'null', 'missing'),
    dealValue: fc.option(fc.double({ min: 0, max: 1e9, noNaN: true }), { nil: undefined }),
    closing: fc.option(dateTime, { nil: undefined }),
    withAnnotations: fc.boolean(),
  })
  .map(({ extraTop, extraDetails, state, detailsKind, dealValue, closing, withAnnotations }) => {
    const referral: JsonObject = JSON.parse(JSON.stringify(extraTop));
    for (const k of [...WRITTEN_TOP, 'details', 'links']) delete referral[k];
    Object.assign(referral, {
      id: 'ref-1',
      eTag: '"2500ec5a-0000"',
      createdDateTime: '2020-10-30T21:03:00.1234567Z',
      ...state,
    });
    if (detailsKind === 'object') {
      const details: JsonObject = JSON.parse(JSON.stringify(extraDetails));
      for (const k of WRITTEN_DETAILS) delete details[k];
      if (dealValue !== undefined) details.dealValue = dealValue;
      if (closing !== undefined) details.closingDateTime = closing;
      referral.details = details;
    } else if (detailsKind === 'null') {
      referral.details = null;
    }
    if (withAnnotations) {
      referral.links = {
        self: { uri: 'https://api.partner.microsoft.com/v1.0/engagments/referrals/ref-1', method: 'GET' },
      };
      referral['@odata.context'] =
        'https://api.partner.microsoft.com/v1.0/engagments/referrals/$metadata#Referrals/$entity';
      referral['@odata.etag'] = 'W/"x"';
    }
    return referral;
  });

const intentArb = fc.record(
  {
    statusReason: fc.string({ maxLength: 20 }),
    dealValue: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1e9, noNaN: true })),
    currency: fc.constantFrom('EUR', 'USD'),
    closingDateTime: dateTime,
    notes: fc.string({ maxLength: 20 }),
    name: fc.string({ minLength: 1, maxLength: 20 }),
    externalReferenceId: fc.string({ maxLength: 20 }),
  },
  { requiredKeys: [] },
);

const sameInstant = (a: JsonValue | undefined, b: JsonValue) =>
  typeof a === 'string' && typeof b === 'string' && Date.parse(a) === Date.parse(b);

describe('buildPutBody / diff (properties)', () => {
  it('equals the original minus links/@odata.* plus exactly the requested change', () => {
    fc.assert(
      fc.property(referralArb, intentArb, (referral, intent) => {
        const snapshot = structuredClone(referral);
        const changes = diff('ref-1', referral, desiredValues(intent, {}));
        const body = buildPutBody(referral, changes);

        // The input is never mutated.
        expect(referral).toEqual(snapshot);
        // Read-only annotations are gone, and nothing else is.
        const expectedKeys = Object.keys(referral).filter((k) => k !== 'links' && !k.startsWith('@odata.'));
        const touchesDetails = changes.some((c) => c.path.startsWith('/details/'));
        const topWritten = changes.filter((c) => !c.path.startsWith('/details/')).map((c) => c.path.slice(1));
        expect(new Set(Object.keys(body))).toEqual(
          new Set([...expectedKeys, ...topWritten, ...(touchesDetails ? ['details'] : [])]),
        );
        // Every field not written goes back byte for byte (compared as JSON text).
        for (const k of expectedKeys) {
          if (topWritten.includes(k) || (k === 'details' && touchesDetails)) continue;
          expect(JSON.stringify(body[k])).toBe(JSON.stringify(referral[k]));
        }
        const originalDetails = (referral.details ?? {}) as JsonObject;
        if (touchesDetails) {
          const details = body.details as JsonObject;
          for (const k of Object.keys(originalDetails)) {
            if (!changes.some((c) => c.path === `/details/${k}`)) {
              expect(JSON.stringify(details[k])).toBe(JSON.stringify(originalDetails[k]));
            }
          }
        }
        // Each requested value is in the body; a change is reported exactly when the value differed.
        for (const [field, value] of Object.entries(intent) as Array<[string, JsonValue]>) {
          const inDetails = WRITTEN_DETAILS.includes(field);
          const before = inDetails ? originalDetails[field] : referral[field];
          const after = inDetails ? (body.details as JsonObject | null)?.[field] : body[field];
          const path = inDetails ? `/details/${field}` : `/${field}`;
          const unchanged = before === value || (field === 'closingDateTime' && sameInstant(before, value));
          expect(changes.some((c) => c.path === path)).toBe(!unchanged);
          expect(after).toEqual(unchanged ? before : value);
        }
        // The serialized body parses back to the same value (no lost own keys such as __proto__).
        expect(JSON.parse(JSON.stringify(body))).toEqual(body);
      }),
      { numRuns: 500 },
    );
  });
});

/** The referral without what a write never carries back (`links`, `@odata.*`). */
const withoutAnnotations = (doc: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(doc).filter(([k]) => k !== 'links' && !k.startsWith('@odata.')));

describe('patchOperations (properties)', () => {
  it('applied by an RFC 6902 implementation (the sandbox one), leaves the referral the PUT body would', () => {
    fc.assert(
      fc.property(referralArb, intentArb, (referral, intent) => {
        const changes = diff('ref-1', referral, desiredValues(intent, {}));
        const operations = patchOperations(referral, changes);
        const patched = applyJsonPatch(referral, operations);
        if (!patched.ok) throw new Error(patched.message);
        expect(withoutAnnotations(patched.doc)).toEqual(buildPutBody(referral, changes));
        // Only replace (the path exists in the read) and add (it does not), one per path, none the service owns.
        for (const { op, path } of operations) {
          const keys = path.slice(1).split('/');
          const exists = keys.length === 1 ? Object.hasOwn(referral, keys[0] as string) : true;
          const parent = referral[keys[0] as string];
          const existsNested =
            keys.length === 1 ||
            (typeof parent === 'object' && parent !== null && Object.hasOwn(parent, keys[1] as string));
          expect(op).toBe(exists && existsNested ? 'replace' : 'add');
        }
        expect(new Set(operations.map((o) => o.path)).size).toBe(operations.length);
        expect(checkPatchPaths(operations)).toBeUndefined();
        expect(operations.length === 0).toBe(changes.length === 0);
      }),
      { numRuns: 500 },
    );
  });

  it('of a batch: one operation per path, with the last value written to it', () => {
    fc.assert(
      fc.property(referralArb, fc.array(intentArb, { minLength: 1, maxLength: 4 }), (referral, intents) => {
        const plan = planBatch('ref-1', referral, intents);
        if (plan.body === undefined) return expect(plan.operations).toEqual([]);
        const patched = applyJsonPatch(referral, plan.operations);
        if (!patched.ok) throw new Error(patched.message);
        expect(withoutAnnotations(patched.doc)).toEqual(plan.body);
        expect(new Set(plan.operations.map((o) => o.path)).size).toBe(plan.operations.length);
      }),
      { numRuns: 300 },
    );
  });
});

describe('patchOperations: examples', () => {
  const change = (path: string, to: JsonValue): Change => ({ path, from: null, to });

  it('replaces what the referral has and adds what it lacks, beneath an existing details object too', () => {
    const referral: JsonObject = { id: 'r', status: 'New', substatus: 'Pending', details: { notes: 'old' } };
    expect(
      patchOperations(referral, [
        change('/status', 'Closed'),
        change('/substatus', 'Won'),
        change('/statusReason', 'Signed'),
        change('/details/notes', 'new'),
        change('/details/dealValue', 10),
      ]),
    ).toEqual([
      { op: 'replace', path: '/status', value: 'Closed' },
      { op: 'replace', path: '/substatus', value: 'Won' },
      { op: 'add', path: '/statusReason', value: 'Signed' },
      { op: 'replace', path: '/details/notes', value: 'new' },
      { op: 'add', path: '/details/dealValue', value: 10 },
    ]);
  });

  it('writes a missing details object whole (add) and a null one whole (replace), with only the changed keys', () => {
    const changes = [change('/details/notes', 'n'), change('/details/currency', 'EUR')];
    expect(patchOperations({ id: 'r' }, changes)).toEqual([
      { op: 'add', path: '/details', value: { notes: 'n', currency: 'EUR' } },
    ]);
    expect(patchOperations({ id: 'r', details: null }, changes)).toEqual([
      { op: 'replace', path: '/details', value: { notes: 'n', currency: 'EUR' } },
    ]);
  });

  it('replaces a field the referral holds as null', () => {
    expect(patchOperations({ statusReason: null }, [change('/statusReason', 'x')])).toEqual([
      { op: 'replace', path: '/statusReason', value: 'x' },
    ]);
  });
});

describe('buildPutBody: examples', () => {
  it('keeps unknown fields, 7-digit timestamps and the eTag, and removes links', () => {
    const referral: JsonObject = JSON.parse(
      '{"id":"r","status":"New","substatus":"Pending","eTag":"\\"e1\\"","createdDateTime":"2020-10-30T21:03:00.1234567Z",' +
        '"partnerRole":{"x":[1,{"y":null}]},"__proto__":{"polluted":true},"links":{"self":{}},"@odata.context":"c",' +
        '"details":{"dealValue":50000,"closingDateTime":"2026-12-31T00:00:00.0000000Z","requirements":{"iot":{}}}}',
    );
    const plan = planUpdate('r', referral, {
      status: 'Active',
      substatus: 'Accepted',
      closingDateTime: '2026-12-31T00:00:00Z',
      dealValue: 125000,
    });
    expect(plan.kind).toBe('write');
    if (plan.kind !== 'write') return;
    const text = JSON.stringify(plan.body);
    expect(text).toContain('"__proto__":{"polluted":true}');
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(plan.body).not.toHaveProperty('links');
    expect(plan.body).not.toHaveProperty(['@odata.context']);
    expect(plan.body.eTag).toBe('"e1"');
    expect(plan.body.createdDateTime).toBe('2020-10-30T21:03:00.1234567Z');
    expect(plan.body.details).toEqual({
      dealValue: 125000,
      closingDateTime: '2026-12-31T00:00:00.0000000Z',
      requirements: { iot: {} },
    });
    expect(plan.changes).toEqual([
      { path: '/details/dealValue', from: 50000, to: 125000 },
      { path: '/status', from: 'New', to: 'Active' },
      { path: '/substatus', from: 'Pending', to: 'Accepted' },
    ]);
  });

  it("copies only the objects on the paths it writes: every other value is the referral's own, unchanged", () => {
    // The body is only serialized and the referral only read, so sharing is safe; copying the whole referral
    // for every plan was most of the cost of planning (docs/performance-analysis.md).
    const referral: JsonObject = JSON.parse(
      '{"id":"r","status":"New","substatus":"Pending","customerProfile":{"team":[{"name":"a"}]},' +
        '"details":{"dealValue":1,"requirements":{"iot":{}}},"links":{"self":{}}}',
    );
    const snapshot = structuredClone(referral);
    const body = buildPutBody(referral, [
      { path: '/details/dealValue', from: 1, to: 2 },
      { path: '/details/notes', from: null, to: 'n' },
      { path: '/name', from: null, to: 'x' },
    ]);
    expect(body).not.toBe(referral);
    expect(body.details).not.toBe(referral.details);
    expect(body.customerProfile).toBe(referral.customerProfile);
    expect((body.details as JsonObject).requirements).toBe((referral.details as JsonObject).requirements);
    expect(body).toEqual({
      id: 'r',
      status: 'New',
      substatus: 'Pending',
      name: 'x',
      customerProfile: { team: [{ name: 'a' }] },
      details: { dealValue: 2, notes: 'n', requirements: { iot: {} } },
    });
    expect(referral).toEqual(snapshot);
  });

  it('creates details with only the written keys when it is null or missing', () => {
    for (const details of [null, undefined]) {
      const referral: JsonObject = { id: 'r', status: 'New', substatus: 'Pending' };
      if (details === null) referral.details = null;
      const plan = planUpdate('r', referral, { currency: 'EUR' });
      expect(plan).toMatchObject({ kind: 'write', body: { details: { currency: 'EUR' } } });
    }
  });

  it('writes a number where the referral held the deal value as a string', () => {
    const plan = planUpdate(
      'r',
      { status: 'New', substatus: 'Pending', details: { dealValue: '10000' } },
      { dealValue: 10000 },
    );
    expect(plan).toMatchObject({ kind: 'write', body: { details: { dealValue: 10000 } } });
  });

  it('refuses to overwrite a details value that is not an object', () => {
    expect(() => planUpdate('r', { status: 'New', substatus: 'Pending', details: 'text' }, { notes: 'x' })).toThrow(
      AdapterError,
    );
  });
});
