/**
 * Keeps the Partner Center sandbox honest against the API as documented (docs/partner-center-api.md), over real
 * HTTP on loopback. If the sandbox drifts from the documentation, the app's tests stop proving anything;
 * these tests fail first.
 *
 * Covered here, by section of that page: listening address; authentication (#request-headers,
 * #http-status-codes); GET by id (#reading-a-referral, #wire-format); list (#listing-referrals); PUT
 * (#put-full-replace, #etag-and-if-match, #status-and-substatus-transitions); PATCH (#patch-json-patch,
 * #documentation-quirks). The control API and fault injection are in faults.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { makeReferral, SEED_IDS } from '../../dev/sandbox/seed.js';
import { startPartnerCenterSandbox } from '../../dev/sandbox/server.js';
import { ALLOWED_MOVES, VALID_PAIRS } from '../support/documented-transitions.js';
import {
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
  readForPut,
  SEVEN_DIGIT_UTC,
  stored,
  str,
  useSandbox,
  withoutVolatile,
} from './http.js';

const sandbox = useSandbox();

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const CLOSED_SEEDS = ['closedWon', 'closedLost', 'closedDeclined', 'closedExpired'] as const;

function split(pair: string): { status: string; substatus: string } {
  const [status = '', substatus = ''] = pair.split('/');
  return { status, substatus };
}

/** Inserts a fresh referral in `pair` through the control API; returns its id, body and eTag. */
function referralIn(pair: string): { id: string; doc: Json; eTag: string } {
  const doc: Json = makeReferral(split(pair));
  const eTag = sandbox.putReferral(doc);
  return { id: str(doc.id), doc, eTag };
}

describe('listening address', () => {
  it('listens on 127.0.0.1 and a random port', () => {
    expect(sandbox.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(Number(new URL(sandbox.url).port)).toBeGreaterThan(0);
  });

  it.each(['0.0.0.0', '::', '192.168.1.20', 'example.com'])('refuses to listen on %s', async (host) => {
    // A sandbox that wrongly starts is closed again so the test process is not left listening.
    const outcome = await startPartnerCenterSandbox({ host }).then(
      async (started) => {
        await started.close();
        return `listened on ${started.url}`;
      },
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(Error);
    expect(String(outcome)).toMatch(/loopback/i);
  });
});

describe('authentication', () => {
  it.each([
    ['no Authorization header', null],
    ['an empty header', ''],
    ['a Basic credential', 'Basic dXNlcjpwYXNz'],
    ['a bare token without the Bearer scheme', 'sandbox-test-token'],
    ['the scheme without a token', 'Bearer'],
    ['a token with spaces', 'Bearer two words'],
  ])('answers 401 with the Partner error shape for %s', async (_label, authorization) => {
    const answer = await getReferral(sandbox, SEED_IDS.newPending, { headers: { authorization } });
    expectPartnerError(answer, 401, 'unauthenticated');
  });

  it('checks the token before anything else: an unauthenticated PUT with a good If-Match writes nothing', async () => {
    const { eTag, body } = await readForPut(sandbox, SEED_IDS.newPending);
    const answer = await putReferral(sandbox, SEED_IDS.newPending, { ...body, name: 'changed' }, eTag, {
      authorization: null,
    });
    expectPartnerError(answer, 401, 'unauthenticated');
    expect(stored(sandbox, SEED_IDS.newPending)).toMatchObject({ eTag, name: body.name });
  });

  it('with acceptToken, refuses every other token', async () => {
    const strict = await startPartnerCenterSandbox({ acceptToken: (token) => token === 'the-good-token' });
    try {
      const refused = await getReferral(strict, SEED_IDS.newPending, {
        headers: { authorization: 'Bearer some-other-token' },
      });
      expectPartnerError(refused, 401, 'unauthenticated');
      const accepted = await getReferral(strict, SEED_IDS.newPending, {
        headers: { authorization: 'Bearer the-good-token' },
      });
      expect(accepted.status, accepted.text).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

describe('GET by id', () => {
  it('returns the referral with a quoted eTag equal to the ETag header, links and @odata.context', async () => {
    const id = SEED_IDS.newPending;
    const answer = await getReferral(sandbox, id);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    const body = obj(answer.body);

    // The value includes literal double quotes; the header carries the same entity tag
    // (docs/partner-center-api.md#etag-and-if-match).
    expect(body.eTag).toMatch(QUOTED_ETAG);
    expect(answer.text).toContain(`"eTag":${JSON.stringify(body.eTag)}`);
    expect(answer.headers.get('etag')).toBe(body.eTag);

    expect(body['@odata.context']).toMatch(/\/\$metadata#Referrals\/\$entity$/);
    const links = obj(body.links, 'links');
    const self = obj(links.self, 'links.self');
    const related = obj(links.relatedReferrals, 'links.relatedReferrals');
    expect(self).toMatchObject({ method: 'GET' });
    expect(str(self.uri)).toMatch(new RegExp(`/referrals/${id}$`));
    expect(related).toMatchObject({ method: 'GET' });
    expect(str(related.uri)).toContain(`engagementId eq '${String(body.engagementId)}'`);

    // The rest of the body is the stored referral, 7-digit date strings and unknown fields untouched.
    expect(body).toMatchObject({ id, status: 'New', substatus: 'Pending' });
    expect(body.createdDateTime).toMatch(SEVEN_DIGIT_UTC);
    expect(withoutVolatile(body)).toStrictEqual(withoutVolatile(stored(sandbox, id)));
    expect(body).toHaveProperty('partnerRole');
  });

  it('answers with a request-id and echoes client-request-id, for logging', async () => {
    const clientRequestId = '0f8fad5b-d9cb-469f-a165-70867728950e';
    const ok = await getReferral(sandbox, SEED_IDS.newPending, { headers: { 'client-request-id': clientRequestId } });
    const missing = await getReferral(sandbox, UNKNOWN_ID, { headers: { 'client-request-id': clientRequestId } });
    for (const answer of [ok, missing]) {
      expect(answer.headers.get('request-id')).toMatch(GUID);
      expect(answer.headers.get('client-request-id')).toBe(clientRequestId);
    }
    expect(ok.headers.get('request-id')).not.toBe(missing.headers.get('request-id'));
  });

  it('returns the same eTag on every read until something writes', async () => {
    const first = obj((await getReferral(sandbox, SEED_IDS.activeAccepted)).body);
    const second = obj((await getReferral(sandbox, SEED_IDS.activeAccepted)).body);
    expect(second.eTag).toBe(first.eTag);
    expect(stored(sandbox, SEED_IDS.activeAccepted).eTag).toBe(first.eTag);
  });

  it('gives every referral its own eTag', async () => {
    const tags = await Promise.all(
      Object.values(SEED_IDS).map(async (id) => obj((await getReferral(sandbox, id)).body).eTag),
    );
    expect(new Set(tags).size).toBe(tags.length);
  });

  it('answers 404 itemNotFound for an unknown id', async () => {
    expectPartnerError(await getReferral(sandbox, UNKNOWN_ID), 404, 'itemNotFound');
  });
});

describe('GET list', () => {
  async function list(query = ''): Promise<Json[]> {
    const answer = await call(sandbox, 'GET', `${REFERRALS}${query}`);
    expect(answer.status, answer.text).toBe(200);
    const value = obj(answer.body).value;
    if (!Array.isArray(value)) throw new Error(`value is not an array: ${answer.text}`);
    return value.map((item: unknown) => obj(item, 'list item'));
  }
  const ids = (items: Json[]) => items.map((item) => item.id);

  it('lists every referral, and no list item carries an eTag', async () => {
    const items = await list();
    expect(new Set(ids(items))).toEqual(new Set(Object.values(SEED_IDS)));
    for (const item of items) {
      expect(item, String(item.id)).not.toHaveProperty('eTag');
      expect(item, String(item.id)).not.toHaveProperty('links');
    }
  });

  it('pages with $top and $skip', async () => {
    const all = ids(await list());
    expect(ids(await list('?$top=2'))).toEqual(all.slice(0, 2));
    expect(ids(await list('?$top=3&$skip=2'))).toEqual(all.slice(2, 5));
    expect(ids(await list(`?$skip=${all.length - 1}`))).toEqual(all.slice(-1));
    expect(await list(`?$skip=${all.length}`)).toEqual([]);
  });

  it.each([
    ['New', ['newPending', 'newReceived']],
    ['Active', ['activeAccepted', 'activeSparse', 'unknownState']],
    ['Closed', ['closedWon', 'closedLost', 'closedDeclined', 'closedExpired']],
  ] as const)("filters on status eq '%s'", async (status, names) => {
    const items = await list(`?$filter=${encodeURIComponent(`status eq '${status}'`)}`);
    expect(new Set(ids(items))).toEqual(new Set(names.map((name) => SEED_IDS[name])));
  });

  it('combines clauses with and, as in the documented example', async () => {
    const filter = encodeURIComponent("(direction eq 'Incoming' and substatus eq 'Pending')");
    expect(ids(await list(`?$filter=${filter}&$top=10`))).toEqual([SEED_IDS.newPending]);
  });

  it('lists the state a write left behind', async () => {
    const { eTag, body } = await readForPut(sandbox, SEED_IDS.newReceived);
    const put = await putReferral(
      sandbox,
      SEED_IDS.newReceived,
      { ...body, status: 'Active', substatus: 'Accepted' },
      eTag,
    );
    expect(put.status, put.text).toBe(200);
    const items = await list(`?$filter=${encodeURIComponent("status eq 'New'")}`);
    expect(ids(items)).toEqual([SEED_IDS.newPending]);
  });
});

describe('PUT full replace', () => {
  it('GET → drop links → PUT with If-Match verbatim: 200, a new quoted eTag, a new 7-digit updatedDateTime', async () => {
    const id = SEED_IDS.newPending;
    const before = stored(sandbox, id);
    const { eTag, body } = await readForPut(sandbox, id);
    const sent: Json = { ...body, status: 'Active', substatus: 'Accepted', externalReferenceId: 'crm-0042' };

    const answer = await putReferral(sandbox, id, sent, eTag);
    expect(answer.status, answer.text).toBe(200);
    const result = obj(answer.body);
    expect(result.eTag).toMatch(QUOTED_ETAG);
    expect(result.eTag).not.toBe(eTag);
    expect(answer.headers.get('etag')).toBe(result.eTag);
    expect(result).toMatchObject({ id, status: 'Active', substatus: 'Accepted', externalReferenceId: 'crm-0042' });

    const after = stored(sandbox, id);
    expect(after.eTag).toBe(result.eTag);
    expect(after.updatedDateTime).toMatch(SEVEN_DIGIT_UTC);
    expect(after.updatedDateTime).not.toBe(before.updatedDateTime);
    expect(Math.abs(Date.parse(str(after.updatedDateTime)) - Date.now())).toBeLessThan(60_000);
    expect(result.updatedDateTime).toBe(after.updatedDateTime);
    expect(after.createdDateTime).toBe(before.createdDateTime);
    // The body went back with @odata.context (only links must go, docs/partner-center-api.md#put-full-replace);
    // it is accepted, not stored as data.
    expect(sent).toHaveProperty(['@odata.context']);
    expect(after).not.toHaveProperty(['@odata.context']);

    // The next GET sees the PUT's eTag, and that eTag is the one that works for the next write.
    expect(obj((await getReferral(sandbox, id)).body).eTag).toBe(result.eTag);
  });

  it('echoing the GET body unchanged (minus links) is accepted and changes nothing but eTag and updatedDateTime', async () => {
    const id = SEED_IDS.activeAccepted;
    const before = stored(sandbox, id);
    const { eTag, body } = await readForPut(sandbox, id);
    const answer = await putReferral(sandbox, id, body, eTag);
    expect(answer.status, answer.text).toBe(200);
    expect(withoutVolatile(stored(sandbox, id))).toStrictEqual(withoutVolatile(before));
  });

  it('stores the body exactly as sent: a removed field is gone, an unknown field is kept', async () => {
    const id = SEED_IDS.newPending;
    const { eTag, body } = await readForPut(sandbox, id);
    expect(body).toHaveProperty('partnerRole');
    const details = structuredClone(obj(body.details));
    const requirements = obj(details.requirements);
    expect(requirements).toHaveProperty('additionalRequirements');
    delete requirements.additionalRequirements;
    const { partnerRole: _dropped, ...rest } = body;
    const sent: Json = { ...rest, details, futureField: { nested: [1, 'two', null] } };

    const answer = await putReferral(sandbox, id, sent, eTag);
    expect(answer.status, answer.text).toBe(200);
    const after = stored(sandbox, id);
    expect(after).not.toHaveProperty('partnerRole');
    expect(obj(obj(after.details).requirements)).not.toHaveProperty('additionalRequirements');
    expect(after.futureField).toStrictEqual({ nested: [1, 'two', null] });
    // Full replace: the store holds the body as sent (the eTag and updatedDateTime are the service's).
    expect(withoutVolatile(after)).toStrictEqual(withoutVolatile(sent));
    expect(withoutVolatile(obj(answer.body))).toStrictEqual(withoutVolatile(sent));
  });

  it('answers 400 when If-Match is missing, and writes nothing', async () => {
    const id = SEED_IDS.newPending;
    const { eTag, body } = await readForPut(sandbox, id);
    const answer = await putReferral(sandbox, id, { ...body, name: 'changed' }, undefined);
    expectPartnerError(answer, 400, 'invalidRequest');
    expect(stored(sandbox, id)).toMatchObject({ eTag, name: body.name });
  });

  it.each([
    ['quotes stripped', (tag: string) => tag.replaceAll('"', '')],
    ['quotes doubled', (tag: string) => `"${tag}"`],
    ['quotes JSON-escaped', (tag: string) => JSON.stringify(tag).slice(1, -1)],
    ['a weak tag', (tag: string) => `W/${tag}`],
  ])('answers 412 preconditionFailed for an If-Match with %s, and writes nothing', async (_label, mangle) => {
    const id = SEED_IDS.newPending;
    const { eTag, body } = await readForPut(sandbox, id);
    const mangled = mangle(eTag);
    expect(mangled).not.toBe(eTag);
    const answer = await putReferral(sandbox, id, { ...body, name: 'changed' }, mangled);
    expectPartnerError(answer, 412, 'preconditionFailed');
    expect(stored(sandbox, id)).toMatchObject({ eTag, name: body.name });
  });

  it("answers 412 for an eTag made stale by someone else's edit, and keeps their edit", async () => {
    const id = SEED_IDS.newReceived;
    const { eTag, body } = await readForPut(sandbox, id);
    const theirs = sandbox.editReferral(id, (referral) => {
      referral.name = 'Renamed by a colleague';
    });
    expect(theirs).toMatch(QUOTED_ETAG);
    expect(theirs).not.toBe(eTag);

    const answer = await putReferral(sandbox, id, { ...body, status: 'Active', substatus: 'Accepted' }, eTag);
    expectPartnerError(answer, 412, 'preconditionFailed');
    expect(stored(sandbox, id)).toMatchObject({ eTag: theirs, name: 'Renamed by a colleague', status: 'New' });

    // Re-GET and retry (docs/partner-center-api.md#concurrency-412-and-lost-responses): the fresh eTag works.
    const fresh = await readForPut(sandbox, id);
    expect(fresh.eTag).toBe(theirs);
    const retry = await putReferral(
      sandbox,
      id,
      { ...fresh.body, status: 'Active', substatus: 'Accepted' },
      fresh.eTag,
    );
    expect(retry.status, retry.text).toBe(200);
  });

  it('answers 412 when the same PUT is replayed with the eTag it already consumed', async () => {
    const id = SEED_IDS.newPending;
    const { eTag, body } = await readForPut(sandbox, id);
    const sent = { ...body, substatus: 'Received' };
    expect((await putReferral(sandbox, id, sent, eTag)).status).toBe(200);
    expectPartnerError(await putReferral(sandbox, id, sent, eTag), 412, 'preconditionFailed');
  });

  it('answers 415 for a body not sent as application/json, and writes nothing', async () => {
    const id = SEED_IDS.newPending;
    const { eTag, body } = await readForPut(sandbox, id);
    const answer = await putReferral(sandbox, id, { ...body, name: 'changed' }, eTag, {
      'content-type': 'text/plain;charset=UTF-8',
    });
    expectPartnerError(answer, 415, 'invalidRequest');
    expect(stored(sandbox, id)).toMatchObject({ eTag, name: body.name });
  });

  it('answers 404 itemNotFound for an unknown id', async () => {
    const { eTag, body } = await readForPut(sandbox, SEED_IDS.newPending);
    expectPartnerError(await putReferral(sandbox, UNKNOWN_ID, { ...body, id: UNKNOWN_ID }, eTag), 404, 'itemNotFound');
  });

  it.each<[string, (body: Json) => unknown]>([
    ['links sent back', (body) => ({ ...body, links: { self: { uri: 'x', method: 'GET', headers: [] } } })],
    ['an empty links object', (body) => ({ ...body, links: {} })],
    ['a different id', (body) => ({ ...body, id: SEED_IDS.newReceived })],
    ['the id missing', ({ id: _id, ...body }) => body],
    ['a different engagementId', (body) => ({ ...body, engagementId: 'c0e1f2a3-ffff-4b5c-8d9e-0f1a2b3c4dff' })],
    [
      'createdDateTime cut to milliseconds by a Date round-trip',
      (body) => ({ ...body, createdDateTime: new Date(str(body.createdDateTime)).toISOString() }),
    ],
    ['dealValue as a string', (body) => ({ ...body, details: { ...obj(body.details), dealValue: '10000' } })],
    ['externalReferenceId as a number', (body) => ({ ...body, externalReferenceId: 12345 })],
    ['a JSON array instead of a referral', (body) => [body]],
    ['a body that is not JSON', (body) => `${JSON.stringify(body)},`],
  ])('answers 400 invalidRequest for %s, and writes nothing', async (_label, mutate) => {
    const id = SEED_IDS.newPending;
    const { eTag, body } = await readForPut(sandbox, id);
    const before = stored(sandbox, id);
    const answer = await putReferral(sandbox, id, mutate(structuredClone(body)), eTag);
    expectPartnerError(answer, 400, 'invalidRequest');
    expect(stored(sandbox, id)).toStrictEqual(before);
  });

  it.each([
    ['New', 'Accepted'],
    ['Active', 'Pending'],
    ['Closed', 'Received'],
    ['None', 'None'],
    ['new', 'pending'],
    ['new', 'Pending'],
    ['Closed', 'won'],
    ['Active', 'Engaged'],
    ['Active', 'Error'],
    ['Closed', undefined],
    [undefined, 'Won'],
  ])('answers 400 for the invalid pair %s/%s, and writes nothing', async (status, substatus) => {
    const id = SEED_IDS.newPending;
    const { eTag, body } = await readForPut(sandbox, id);
    const answer = await putReferral(sandbox, id, { ...body, status, substatus }, eTag);
    expectPartnerError(answer, 400, 'invalidRequest');
    expect(stored(sandbox, id)).toMatchObject({ eTag, status: 'New', substatus: 'Pending' });
  });

  it('applies exactly the documented moves between every pair of valid states', async () => {
    const outcomes: string[] = [];
    const expected: string[] = [];
    for (const from of VALID_PAIRS) {
      for (const to of VALID_PAIRS) {
        const key = `${from}>${to}`;
        const referral = referralIn(from);
        const answer = await putReferral(sandbox, referral.id, { ...referral.doc, ...split(to) }, referral.eTag);
        const after = stored(sandbox, referral.id);
        const landed = `${String(after.status)}/${String(after.substatus)}`;
        const code = answer.status === 200 ? 'ok' : obj(obj(answer.body).error, 'error').code;
        outcomes.push(`${key}: ${answer.status} ${String(code)}, now ${landed}`);
        expected.push(ALLOWED_MOVES.has(key) ? `${key}: 200 ok, now ${to}` : `${key}: 400 invalidRequest, now ${from}`);
        if (answer.status !== 200) expect(after.eTag, key).toBe(referral.eTag);
      }
    }
    expect(outcomes).toEqual(expected);
  });

  it.each(CLOSED_SEEDS)('refuses any PUT to the Closed seed %s, even one that changes nothing', async (name) => {
    const id = SEED_IDS[name];
    const before = stored(sandbox, id);
    const { eTag, body } = await readForPut(sandbox, id);
    expect(body.status).toBe('Closed');
    const attempts: Json[] = [
      body,
      { ...body, statusReason: 'Corrected by the partner' },
      ...VALID_PAIRS.map((pair) => ({ ...body, ...split(pair) })),
    ];
    for (const attempt of attempts) {
      const answer = await putReferral(sandbox, id, attempt, eTag);
      expectPartnerError(answer, 400, 'invalidRequest');
    }
    expect(stored(sandbox, id)).toStrictEqual(before);
  });

  it('refuses writes to a referral in a state the table does not know (Active/Error)', async () => {
    const id = SEED_IDS.unknownState;
    const before = stored(sandbox, id);
    const { eTag, body } = await readForPut(sandbox, id);
    expect(body).toMatchObject({ status: 'Active', substatus: 'Error' });
    for (const pair of [undefined, ...VALID_PAIRS]) {
      const sent = pair === undefined ? body : { ...body, ...split(pair) };
      expectPartnerError(await putReferral(sandbox, id, sent, eTag), 400, 'invalidRequest');
    }
    const patch = await patchReferral(sandbox, id, [{ op: 'replace', path: '/details/notes', value: 'x' }]);
    expectPartnerError(patch, 400, 'invalidRequest');
    expect(stored(sandbox, id)).toStrictEqual(before);
  });
});

describe('PATCH', () => {
  const WIN = [
    { op: 'replace', path: '/status', value: 'Closed' },
    { op: 'replace', path: '/substatus', value: 'Won' },
    { op: 'replace', path: '/details/dealValue', value: 125000 },
    { op: 'replace', path: '/details/notes', value: 'Signed' },
  ];

  it('applies replace operations under a matching If-Match: 204, no body, a new eTag, nothing else touched', async () => {
    const id = SEED_IDS.activeAccepted;
    const before = stored(sandbox, id);
    const answer = await patchReferral(sandbox, id, WIN, { 'if-match': str(before.eTag) });
    expect(answer.status, answer.text).toBe(204);
    expect(answer.text).toBe('');
    expect(answer.headers.get('content-length')).toBe('0');
    expect(answer.headers.get('request-id')).toMatch(GUID);

    const after = stored(sandbox, id);
    expect(after).toMatchObject({
      status: 'Closed',
      substatus: 'Won',
      details: { dealValue: 125000, notes: 'Signed' },
    });
    expect(after.eTag).toMatch(QUOTED_ETAG);
    expect(after.eTag).not.toBe(before.eTag);
    expect(after.updatedDateTime).toMatch(SEVEN_DIGIT_UTC);
    expect(after.updatedDateTime).not.toBe(before.updatedDateTime);
    const untouched = (doc: Json) => {
      const copy = withoutVolatile(doc, 'status', 'substatus');
      const details = obj(copy.details);
      delete details.dealValue;
      delete details.notes;
      return copy;
    };
    expect(untouched(after)).toStrictEqual(untouched(before));
  });

  it('supports add, e.g. appending a team member with /team/-', async () => {
    const id = SEED_IDS.newPending;
    const member = { firstName: 'Ada', lastName: 'Lovelace', phoneNumber: '1', email: 'ada@contoso.com' };
    const answer = await patchReferral(sandbox, id, [{ op: 'add', path: '/team/-', value: member }]);
    expect(answer.status, answer.text).toBe(204);
    const team = stored(sandbox, id).team;
    expect(Array.isArray(team) ? team.at(-1) : team).toStrictEqual(member);
  });

  it('needs no If-Match: without one there is no concurrency check', async () => {
    const id = SEED_IDS.activeAccepted;
    sandbox.editReferral(id, (referral) => {
      referral.name = 'Edited elsewhere';
    });
    const answer = await patchReferral(sandbox, id, WIN);
    expect(answer.status, answer.text).toBe(204);
    expect(stored(sandbox, id)).toMatchObject({ name: 'Edited elsewhere', status: 'Closed', substatus: 'Won' });
  });

  it('answers 412 for a stale If-Match, and writes nothing', async () => {
    const id = SEED_IDS.activeAccepted;
    const { eTag } = await readForPut(sandbox, id);
    sandbox.editReferral(id, (referral) => {
      referral.name = 'Edited elsewhere';
    });
    const before = stored(sandbox, id);
    const answer = await patchReferral(sandbox, id, WIN, { 'if-match': eTag });
    expectPartnerError(answer, 412, 'preconditionFailed');
    expect(stored(sandbox, id)).toStrictEqual(before);
  });

  it('returns the updated referral with 200 under Prefer: return=representation', async () => {
    const id = SEED_IDS.activeAccepted;
    const answer = await patchReferral(sandbox, id, WIN, { prefer: 'return=representation' });
    expect(answer.status, answer.text).toBe(200);
    const body = obj(answer.body);
    const after = stored(sandbox, id);
    expect(body).toMatchObject({ id, status: 'Closed', substatus: 'Won', eTag: after.eTag });
    expect(body.eTag).toMatch(QUOTED_ETAG);
    expect(answer.headers.get('etag')).toBe(after.eTag);
    expect(withoutVolatile(body)).toStrictEqual(withoutVolatile(after));
  });

  it.each<[string, unknown]>([
    ['a remove op', [{ op: 'remove', path: '/details/notes' }]],
    // RFC 6902 ignores extra members: a remove must be refused for its op, not for carrying no value.
    ['a remove op carrying a value member', [{ op: 'remove', path: '/details/notes', value: null }]],
    ['a move op', [{ op: 'move', from: '/details/notes', path: '/name' }]],
    ['a copy op', [{ op: 'copy', from: '/details/notes', path: '/name' }]],
    ['a test op', [{ op: 'test', path: '/status', value: 'Active' }]],
    [
      'a replace followed by a remove',
      [
        { op: 'replace', path: '/name', value: 'x' },
        { op: 'remove', path: '/name' },
      ],
    ],
    ['a JSON object instead of a JSON Patch array', { status: 'Closed', substatus: 'Won' }],
    ['dealValue as a string, as in the doc example', [{ op: 'replace', path: '/details/dealValue', value: '10000' }]],
    [
      'a backwards move Active → New',
      [
        { op: 'replace', path: '/status', value: 'New' },
        { op: 'replace', path: '/substatus', value: 'Pending' },
      ],
    ],
    ['a change of a read-only field', [{ op: 'replace', path: '/id', value: SEED_IDS.newPending }]],
    ['a name that is not a string', [{ op: 'replace', path: '/name', value: 42 }]],
    ['notes that are not a string', [{ op: 'add', path: '/details/notes', value: { text: 'x' } }]],
    ['a currency in lower case', [{ op: 'add', path: '/details/currency', value: 'usd' }]],
    ['a closing date without a zone', [{ op: 'add', path: '/details/closingDateTime', value: '2026-12-01T00:00:00' }]],
    ['a status without its substatus', [{ op: 'replace', path: '/status', value: 'Closed' }]],
    ['an add below a field that does not exist', [{ op: 'add', path: '/nothing/here', value: 1 }]],
  ])('answers 400 invalidRequest for %s, and writes nothing', async (_label, operations) => {
    const id = SEED_IDS.activeAccepted;
    const before = stored(sandbox, id);
    const answer = await patchReferral(sandbox, id, operations, { 'if-match': str(before.eTag) });
    expectPartnerError(answer, 400, 'invalidRequest');
    expect(stored(sandbox, id)).toStrictEqual(before);
  });

  // A PUT must send these back unchanged; a JSON Patch has no business naming them, even with the same value.
  it.each<[string, (doc: Json, eTag: string) => unknown[]]>([
    ['the whole document', (doc) => [{ op: 'replace', path: '', value: { ...doc, name: 'x' } }]],
    ['id, with its own value', (doc) => [{ op: 'replace', path: '/id', value: doc.id }]],
    ['engagementId, with its own value', (doc) => [{ op: 'replace', path: '/engagementId', value: doc.engagementId }]],
    ['createdDateTime', (doc) => [{ op: 'replace', path: '/createdDateTime', value: doc.createdDateTime }]],
    ['organizationId', () => [{ op: 'add', path: '/organizationId', value: 'x' }]],
    ['updatedDateTime', () => [{ op: 'replace', path: '/updatedDateTime', value: '2020-01-01T00:00:00Z' }]],
    ['eTag, with its own value', (_doc, eTag) => [{ op: 'add', path: '/eTag', value: eTag }]],
    ['links', () => [{ op: 'add', path: '/links', value: {} }]],
    ['an OData annotation', () => [{ op: 'add', path: '/@odata.context', value: 'x' }]],
    [
      'a service-owned path after a valid operation',
      () => [
        { op: 'replace', path: '/name', value: 'x' },
        { op: 'add', path: '/links/self', value: {} },
      ],
    ],
  ])(
    'answers 400 invalidRequest for an operation on %s (a path the service owns), and writes nothing',
    async (_label, operations) => {
      const id = SEED_IDS.activeAccepted;
      const before = stored(sandbox, id);
      const answer = await patchReferral(sandbox, id, operations(before, str(before.eTag)), {
        'if-match': str(before.eTag),
      });
      expectPartnerError(answer, 400, 'invalidRequest');
      expect(JSON.stringify(answer.body)).toContain("can't be patched");
      expect(stored(sandbox, id)).toStrictEqual(before);
    },
  );

  it('adds a details object the referral lacks, whole, and then replaces and adds beneath it', async () => {
    const id = SEED_IDS.activeAccepted;
    sandbox.editReferral(id, (referral) => {
      delete referral.details;
    });
    const first = await patchReferral(sandbox, id, [{ op: 'add', path: '/details', value: { notes: 'first' } }]);
    expect(first.status, first.text).toBe(204);
    const second = await patchReferral(sandbox, id, [
      { op: 'replace', path: '/details/notes', value: 'second' },
      { op: 'add', path: '/details/dealValue', value: 10 },
    ]);
    expect(second.status, second.text).toBe(204);
    expect(stored(sandbox, id).details).toStrictEqual({ notes: 'second', dealValue: 10 });
  });

  it.each(CLOSED_SEEDS)('refuses any PATCH to the Closed seed %s', async (name) => {
    const id = SEED_IDS[name];
    const before = stored(sandbox, id);
    const answer = await patchReferral(sandbox, id, [{ op: 'add', path: '/statusReason', value: 'Corrected' }]);
    expectPartnerError(answer, 400, 'invalidRequest');
    expect(stored(sandbox, id)).toStrictEqual(before);
  });

  it('answers 404 itemNotFound for an unknown id', async () => {
    expectPartnerError(await call(sandbox, 'PATCH', itemPath(UNKNOWN_ID), { body: WIN }), 404, 'itemNotFound');
  });
});
