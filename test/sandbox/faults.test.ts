/**
 * The sandbox's control API and fault injection, over real HTTP on loopback. The app's resilience
 * tests (throttling, lost PUT responses, concurrent writers) are only as good as these faults: each
 * test checks both what the client sees and what the store holds afterwards.
 */
import { describe, expect, it } from 'vitest';
import { makeReferral, SEED_IDS } from '../../dev/sandbox/seed.js';
import { startPartnerCenterSandbox } from '../../dev/sandbox/server.js';
import {
  call,
  expectPartnerError,
  getReferral,
  itemPath,
  type Json,
  obj,
  putReferral,
  QUOTED_ETAG,
  REFERRALS,
  readForPut,
  SEVEN_DIGIT_UTC,
  stored,
  str,
  useSandbox,
} from './http.js';

const sandbox = useSandbox();

const ID = SEED_IDS.newPending;
const OTHER_ID = SEED_IDS.newReceived;

/** A valid PUT for `id` built from a fresh GET (which is then dropped from the recorded requests). */
async function preparePut(id: string, change: Json = { substatus: 'Received' }) {
  const { eTag, body } = await readForPut(sandbox, id);
  sandbox.clearRequests();
  return { eTag, sent: { ...body, ...change } };
}

/** Resolves with the error when `promise` rejects; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected the request to fail at the transport level; it answered ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe("fault 'status'", () => {
  it('answers 429 in the throttling shape with Retry-After, applies nothing, and fires once', async () => {
    const { eTag, sent } = await preparePut(ID);
    sandbox.injectFault({ action: { type: 'status', status: 429, retryAfter: '7' } });

    const throttled = await putReferral(sandbox, ID, sent, eTag);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('7');
    // Throttling shape (docs/partner-center-api.md#error-bodies-and-codes):
    // { statusCode: 429, message: "Rate limit is exceeded. Try again in N seconds." }
    expect(throttled.body).toStrictEqual({ statusCode: 429, message: expect.stringMatching(/\b7 seconds\b/) });
    expect(stored(sandbox, ID)).toMatchObject({ eTag, substatus: 'Pending' });

    const retried = await putReferral(sandbox, ID, sent, eTag);
    expect(retried.status, retried.text).toBe(200);
    expect(stored(sandbox, ID).substatus).toBe('Received');
  });

  it('sends a Retry-After on 429 even when the rule names none', async () => {
    sandbox.injectFault({ action: { type: 'status', status: 429 } });
    const answer = await getReferral(sandbox, ID);
    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(obj(answer.body).statusCode).toBe(429);
  });

  it.each([
    [503, 'serviceNotAvailable'],
    [500, 'generalException'],
    [409, 'resourceModified'],
  ])('answers %i with the Partner error shape (code %s)', async (status, code) => {
    sandbox.injectFault({ action: { type: 'status', status, retryAfter: '2' } });
    const answer = await getReferral(sandbox, ID);
    expectPartnerError(answer, status, code);
    expect(answer.headers.get('retry-after')).toBe('2');
  });

  it('sends a custom body verbatim, e.g. an HTML page from a gateway', async () => {
    const page = '<html><body>502 Bad Gateway</body></html>';
    sandbox.injectFault({ action: { type: 'status', status: 502, body: page } });
    const answer = await getReferral(sandbox, ID);
    expect(answer.status).toBe(502);
    expect(answer.headers.get('content-type')).toMatch(/^text\/html/);
    expect(answer.text).toBe(page);
  });
});

describe("fault 'reset'", () => {
  it('drops the connection without applying anything', async () => {
    const { eTag, sent } = await preparePut(ID);
    const before = stored(sandbox, ID);
    sandbox.injectFault({ action: { type: 'reset' } });
    expect(await rejection(putReferral(sandbox, ID, sent, eTag))).toBeInstanceOf(Error);
    expect(stored(sandbox, ID)).toStrictEqual(before);
    // Recorded once: neither the sandbox nor fetch replayed the request behind our back.
    expect(sandbox.requests.map((r) => r.method)).toEqual(['PUT']);
  });
});

describe("fault 'apply-then-reset' (the lost PUT response)", () => {
  it('stores the PUT, drops the connection, and the replay with the old eTag gets 412', async () => {
    const { eTag, sent } = await preparePut(ID);
    sandbox.injectFault({ method: 'PUT', action: { type: 'apply-then-reset' } });
    expect(await rejection(putReferral(sandbox, ID, sent, eTag))).toBeInstanceOf(Error);

    const after = stored(sandbox, ID);
    expect(after.substatus).toBe('Received');
    expect(after.eTag).toMatch(QUOTED_ETAG);
    expect(after.eTag).not.toBe(eTag);
    expect(after.updatedDateTime).toMatch(SEVEN_DIGIT_UTC);
    expect(sandbox.requests.map((r) => r.method)).toEqual(['PUT']);

    expectPartnerError(await putReferral(sandbox, ID, sent, eTag), 412, 'preconditionFailed');
  });
});

describe("fault 'apply-then-status'", () => {
  it('stores the PUT but answers the given status, e.g. a 504 from a proxy', async () => {
    const { eTag, sent } = await preparePut(ID);
    sandbox.injectFault({ action: { type: 'apply-then-status', status: 504 } });
    const answer = await putReferral(sandbox, ID, sent, eTag);
    expectPartnerError(answer, 504, 'serviceNotAvailable');
    expect(stored(sandbox, ID).substatus).toBe('Received');
    expect(stored(sandbox, ID).eTag).not.toBe(eTag);
  });
});

describe("fault 'delay'", () => {
  it('holds the answer back, then handles the request normally', async () => {
    const { eTag, sent } = await preparePut(ID);
    sandbox.injectFault({ action: { type: 'delay', ms: 150 } });
    const started = performance.now();
    const answer = await putReferral(sandbox, ID, sent, eTag);
    const elapsed = performance.now() - started;
    expect(answer.status, answer.text).toBe(200);
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(stored(sandbox, ID).substatus).toBe('Received');
  });
});

describe("fault 'concurrent-edit'", () => {
  it('changes the eTag before the request is handled, so a freshly read PUT gets 412', async () => {
    const { eTag, sent } = await preparePut(ID, { status: 'Active', substatus: 'Accepted' });
    sandbox.injectFault({
      method: 'PUT',
      action: {
        type: 'concurrent-edit',
        edit: (referral) => {
          referral.name = 'Renamed concurrently';
        },
      },
    });
    expectPartnerError(await putReferral(sandbox, ID, sent, eTag), 412, 'preconditionFailed');
    const after = stored(sandbox, ID);
    expect(after).toMatchObject({ name: 'Renamed concurrently', status: 'New', substatus: 'Pending' });
    expect(after.eTag).not.toBe(eTag);

    // The rule is used up: a re-read and retry succeeds and keeps the concurrent change.
    const fresh = await readForPut(sandbox, ID);
    const retry = await putReferral(
      sandbox,
      ID,
      { ...fresh.body, status: 'Active', substatus: 'Accepted' },
      fresh.eTag,
    );
    expect(retry.status, retry.text).toBe(200);
    expect(stored(sandbox, ID)).toMatchObject({ name: 'Renamed concurrently', status: 'Active' });
  });
});

describe('fault matching', () => {
  it('applies a rule to `times` matching requests, then stops', async () => {
    sandbox.injectFault({ times: 2, action: { type: 'status', status: 503 } });
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await getReferral(sandbox, ID)).status);
    expect(statuses).toEqual([503, 503, 200]);
  });

  it('matches on method (any case) and referral id (any case), and leaves other requests alone', async () => {
    sandbox.injectFault({ method: 'put', referralId: ID.toUpperCase(), action: { type: 'status', status: 503 } });
    const { eTag: otherTag, sent: otherBody } = await preparePut(OTHER_ID, { substatus: 'Pending' });
    const { eTag, sent } = await preparePut(ID);

    expect((await getReferral(sandbox, ID)).status).toBe(200);
    expect((await call(sandbox, 'GET', REFERRALS)).status).toBe(200);
    expect((await putReferral(sandbox, OTHER_ID, otherBody, otherTag)).status).toBe(200);
    expectPartnerError(await putReferral(sandbox, ID, sent, eTag), 503, 'serviceNotAvailable');
    expect(stored(sandbox, ID).substatus).toBe('Pending');
    // Used up by the one request it matched.
    expect((await putReferral(sandbox, ID, sent, eTag)).status).toBe(200);
  });

  it('fires the first matching rule in the order rules were added', async () => {
    sandbox.injectFault({ action: { type: 'status', status: 503 } });
    sandbox.injectFault({ action: { type: 'status', status: 500 } });
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await getReferral(sandbox, ID)).status);
    expect(statuses).toEqual([503, 500, 200]);
  });

  it('clearFaults() removes pending rules', async () => {
    sandbox.injectFault({ times: 5, action: { type: 'status', status: 503 } });
    sandbox.clearFaults();
    expect((await getReferral(sandbox, ID)).status).toBe(200);
  });
});

describe('recorded requests', () => {
  it('records every request in order, faulted ones included, with path, lower-cased headers and body', async () => {
    const { eTag, sent } = await preparePut(ID);
    sandbox.injectFault({ method: 'GET', action: { type: 'status', status: 429 } });
    sandbox.injectFault({ method: 'PATCH', action: { type: 'reset' } });

    expect((await getReferral(sandbox, ID)).status).toBe(429);
    await rejection(call(sandbox, 'PATCH', itemPath(ID), { body: [{ op: 'add', path: '/name', value: 'x' }] }));
    expect(
      (await call(sandbox, 'GET', `${REFERRALS}?$top=1`, { headers: { 'Client-Request-Id': 'abc' } })).status,
    ).toBe(200);
    const put = await putReferral(sandbox, ID, sent, eTag);
    expect(put.status, put.text).toBe(200);

    const requests = sandbox.requests;
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET ${REFERRALS}/${ID}`,
      `PATCH ${REFERRALS}/${ID}`,
      `GET ${REFERRALS}?$top=1`,
      `PUT ${REFERRALS}/${ID}`,
    ]);
    expect(requests.map((r) => r.referralId)).toEqual([ID, ID, undefined, ID]);
    expect(requests[1]?.body).toBe(JSON.stringify([{ op: 'add', path: '/name', value: 'x' }]));
    expect(requests[2]?.headers['client-request-id']).toBe('abc');
    expect(requests[3]?.headers['if-match']).toBe(eTag);
    expect(requests[3]?.headers.authorization).toBe('Bearer sandbox-test-token');
    expect(JSON.parse(requests[3]?.body ?? '')).toStrictEqual(sent);
  });

  it('records unauthenticated requests too, and clearRequests() empties the record', async () => {
    expect((await getReferral(sandbox, ID, { headers: { authorization: null } })).status).toBe(401);
    expect(sandbox.requests).toHaveLength(1);
    sandbox.clearRequests();
    expect(sandbox.requests).toEqual([]);
  });
});

describe('state control', () => {
  it('reset() restores the seed and clears recorded requests and faults', async () => {
    const original = stored(sandbox, ID);
    sandbox.editReferral(ID, (referral) => {
      referral.name = 'Edited';
    });
    const extra = makeReferral();
    sandbox.putReferral(extra);
    sandbox.injectFault({ times: 10, action: { type: 'status', status: 503 } });
    expect((await getReferral(sandbox, ID)).status).toBe(503);

    sandbox.reset();
    expect(sandbox.requests).toEqual([]);
    expect(sandbox.getReferral(str(extra.id))).toBeUndefined();
    const restored = stored(sandbox, ID);
    const { eTag: _newTag, ...restoredBody } = restored;
    const { eTag: _oldTag, ...originalBody } = original;
    expect(restoredBody).toStrictEqual(originalBody);
    expect((await getReferral(sandbox, ID)).status).toBe(200);
  });

  it('putReferral() inserts a referral that GET serves with the returned quoted eTag', async () => {
    const referral = makeReferral({ status: 'Active', substatus: 'Accepted' });
    const eTag = sandbox.putReferral(referral);
    expect(eTag).toMatch(QUOTED_ETAG);
    const answer = await getReferral(sandbox, str(referral.id));
    expect(answer.status, answer.text).toBe(200);
    expect(obj(answer.body)).toMatchObject({ id: referral.id, status: 'Active', eTag });
    expect(answer.headers.get('etag')).toBe(eTag);
  });

  it('editReferral() bumps the eTag and updatedDateTime like a write by someone else', () => {
    const before = stored(sandbox, ID);
    const eTag = sandbox.editReferral(ID, (referral) => {
      referral.name = 'Edited';
    });
    const after = stored(sandbox, ID);
    expect(after).toMatchObject({ eTag, name: 'Edited' });
    expect(eTag).toMatch(QUOTED_ETAG);
    expect(eTag).not.toBe(before.eTag);
    expect(after.updatedDateTime).toMatch(SEVEN_DIGIT_UTC);
    expect(after.updatedDateTime).not.toBe(before.updatedDateTime);
  });

  it('getReferral() hands out a copy: changing it does not change the store', () => {
    const copy = stored(sandbox, ID);
    copy.name = 'Mutated';
    obj(copy.details).dealValue = 1;
    expect(stored(sandbox, ID).name).not.toBe('Mutated');
    expect(obj(stored(sandbox, ID).details).dealValue).not.toBe(1);
  });

  it('makeReferral() builds a fresh New/Pending referral with new ids', () => {
    const a = makeReferral();
    const b = makeReferral();
    expect(a).toMatchObject({ status: 'New', substatus: 'Pending' });
    expect(a.id).not.toBe(b.id);
    expect(a.engagementId).not.toBe(b.engagementId);
    expect(Object.values(SEED_IDS)).not.toContain(a.id);
    expect(a.createdDateTime).toMatch(SEVEN_DIGIT_UTC);
  });

  it('stops serving on close()', async () => {
    const other = await startPartnerCenterSandbox();
    const url = other.url;
    expect((await getReferral(other, ID)).status).toBe(200);
    await other.close();
    expect(await rejection(fetch(`${url}${itemPath(ID)}`))).toBeInstanceOf(Error);
  });
});
