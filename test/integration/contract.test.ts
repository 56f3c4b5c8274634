/**
 * Contract v1 end to end: HTTP → local host (plain Node, built app) → real @azure/identity → loopback
 * managed-identity emulator → Partner Center sandbox. One test per response row, plus the traps, under
 * each write method (`PARTNER_CENTER_WRITE_METHOD=put|patch`, docs/partner-center-api.md#put-or-patch).
 */
import { describe, expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import type { RecordedRequest } from '../../dev/sandbox/server.js';
import { requestsOf, type Stack, useStack } from '../support/stack.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The stored referral without what a successful write legitimately changes. */
function stable(referral: Record<string, unknown> | undefined, dropDetails: string[] = [], dropTop: string[] = []) {
  const copy = structuredClone(referral ?? {});
  for (const key of ['eTag', 'updatedDateTime', ...dropTop]) delete copy[key];
  const details = copy.details as Record<string, unknown> | null | undefined;
  if (details) for (const key of dropDetails) delete details[key];
  return copy;
}

/** Both write methods (PARTNER_CENTER_WRITE_METHOD): every test of contract v1 runs under each. */
const WRITE_METHODS = ['put', 'patch'] as const;

/** A PATCH request holds the event's changes only, as JSON Patch: replace where `before` has the path, add where not. */
function expectPatch(
  request: RecordedRequest | undefined,
  before: Record<string, unknown> | undefined,
  changes: Array<{ path: string; to: unknown }>,
) {
  expect(request?.headers.prefer).toBe('return=representation');
  expect(request?.headers['if-match']).toBe(before?.eTag);
  const has = (path: string) =>
    path
      .slice(1)
      .split('/')
      .reduce<unknown>(
        (node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined),
        before,
      ) !== undefined;
  expect(JSON.parse(request?.body ?? '')).toEqual(
    changes.map(({ path, to }) => ({ op: has(path) ? 'replace' : 'add', path, value: to })),
  );
}

function expectProblem(answer: Awaited<ReturnType<Stack['post']>>, status: number, code: string, retryable: boolean) {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({
    type: `urn:partner-referral-webhook:error:${code}`,
    status,
    code,
    retryable,
    title: expect.any(String),
    detail: expect.any(String),
  });
  expect(answer.headers.get('ms-correlationid')).toMatch(GUID);
}

describe.each(WRITE_METHODS)('PARTNER_CENTER_WRITE_METHOD=%s', (method) => {
  const stack = useStack({ PARTNER_CENTER_WRITE_METHOD: method }, { resetSandbox: true });
  /** The method of the app's writes. */
  const WRITE = method === 'patch' ? 'PATCH' : 'PUT';

  describe('200 updated', () => {
    it('applies the event with one GET and one conditional PUT, preserving every other field', async () => {
      const id = SEED_IDS.newPending;
      const before = stack.sandbox.getReferral(id);
      const beforeDetails = (before?.details ?? {}) as Record<string, unknown>;
      const answer = await stack.post({
        referralId: id,
        status: 'active',
        dealValue: 125000,
        currency: 'eur',
        closingDate: '2026-12-31',
        notes: 'Kick-off booked',
        externalReferenceId: 'crm-0042',
      });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      const after = stack.sandbox.getReferral(id);
      expect(answer.body).toEqual({
        referralId: id,
        outcome: 'updated',
        status: 'Active',
        substatus: 'Accepted',
        eTag: after?.eTag,
        changes: expect.arrayContaining([
          { path: '/status', from: 'New', to: 'Active' },
          { path: '/substatus', from: 'Pending', to: 'Accepted' },
          { path: '/details/dealValue', from: beforeDetails.dealValue, to: 125000 },
          { path: '/details/currency', from: beforeDetails.currency, to: 'EUR' },
          { path: '/details/notes', from: expect.anything(), to: 'Kick-off booked' },
          { path: '/externalReferenceId', from: before?.externalReferenceId, to: 'crm-0042' },
        ]),
      });
      expect(after).toMatchObject({
        status: 'Active',
        substatus: 'Accepted',
        externalReferenceId: 'crm-0042',
        details: {
          dealValue: 125000,
          currency: 'EUR',
          closingDateTime: '2026-12-31T00:00:00Z',
          notes: 'Kick-off booked',
        },
      });
      // No data loss: everything else, unknown fields included, is exactly as before.
      const touched = ['dealValue', 'currency', 'closingDateTime', 'notes'];
      const top = ['status', 'substatus', 'externalReferenceId'];
      expect(stable(after, touched, top)).toEqual(stable(before, touched, top));
      expect(Object.keys(before ?? {})).toEqual(expect.arrayContaining(['partnerRole', 'solutionAreas']));

      const [get, put, ...rest] = stack.sandbox.requests;
      expect(rest).toEqual([]);
      expect(get?.method).toBe('GET');
      expect(put?.method).toBe(WRITE);
      // The eTag goes back byte for byte, quotes included; links and @odata.* do not go back.
      expect(put?.headers['if-match']).toBe(before?.eTag);
      expect(String(before?.eTag)).toMatch(/^".*"$/);
      const body = JSON.parse(put?.body ?? '{}');
      if (method === 'patch') {
        // Only the changed paths: replace where the referral has them, add where it does not.
        expectPatch(put, before, answer.body.changes as Array<{ path: string; to: unknown }>);
        return;
      }
      expect(body).not.toHaveProperty('links');
      expect(Object.keys(body).filter((k) => k.startsWith('@odata.'))).toEqual([]);
    });

    it('sends the documented headers: token, JSON, one correlation id per event, a fresh request id per call', async () => {
      const correlationId = '0f8fad5b-d9cb-469f-a165-70867728950e';
      const answer = await stack.post(
        { referralId: SEED_IDS.newReceived, substatus: 'Pending' },
        { headers: { 'MS-CorrelationId': correlationId } },
      );
      expect(answer.status, answer.text).toBe(200);
      expect(answer.headers.get('ms-correlationid')).toBe(correlationId);
      const calls = stack.sandbox.requests;
      expect(calls).toHaveLength(2);
      for (const call of calls) {
        expect(call.headers.authorization).toMatch(/^Bearer emulated-mi-/);
        expect(stack.identity.isIssued(call.headers.authorization?.slice(7) ?? '')).toBe(true);
        expect(call.headers.accept).toBe('application/json');
        expect(call.headers['content-type']).toBe('application/json');
        expect(call.headers['ms-correlationid']).toBe(correlationId);
        expect(call.headers['ms-requestid']).toMatch(GUID);
      }
      expect(calls[0]?.headers['ms-requestid']).not.toBe(calls[1]?.headers['ms-requestid']);
    });

    it('generates a correlation id when the caller sends none and echoes it', async () => {
      const answer = await stack.post({ referralId: SEED_IDS.activeAccepted, notes: 'x' });
      expect(answer.status).toBe(200);
      const id = answer.headers.get('ms-correlationid');
      expect(id).toMatch(GUID);
      expect(stack.sandbox.requests.every((r) => r.headers['ms-correlationid'] === id)).toBe(true);
    });

    it('creates details when the referral has none', async () => {
      const before = stack.sandbox.getReferral(SEED_IDS.activeSparse)?.details;
      const answer = await stack.post({ referralId: SEED_IDS.activeSparse, dealValue: 10, currency: 'USD' });
      expect(answer.status, answer.text).toBe(200);
      expect(stack.sandbox.getReferral(SEED_IDS.activeSparse)?.details).toEqual({ dealValue: 10, currency: 'USD' });
      if (method === 'patch') {
        // No details object to add beneath: the whole object is written, with only the changed keys.
        const [patch] = requestsOf(stack.sandbox, 'PATCH');
        expect(JSON.parse(patch?.body ?? '')).toEqual([
          { op: before === undefined ? 'add' : 'replace', path: '/details', value: { dealValue: 10, currency: 'USD' } },
        ]);
      }
    });

    it('echoes the event id from webhook-id', async () => {
      const answer = await stack.post(
        { referralId: SEED_IDS.activeAccepted, notes: 'y' },
        { headers: { 'webhook-id': 'msg_9' } },
      );
      expect(answer.body.eventId).toBe('msg_9');
    });
  });

  describe('200 unchanged and dry-run', () => {
    it('sends no write when the referral already holds the values', async () => {
      const current = stack.sandbox.getReferral(SEED_IDS.activeAccepted);
      const answer = await stack.post({ referralId: SEED_IDS.activeAccepted, status: 'Active' });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ outcome: 'unchanged', changes: [], eTag: current?.eTag });
      expect(requestsOf(stack.sandbox, WRITE)).toEqual([]);
    });

    it('succeeds for a retried "Won" on a referral that is already Closed/Won', async () => {
      const answer = await stack.post({ referralId: SEED_IDS.closedWon, substatus: 'won' });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body).toMatchObject({ outcome: 'unchanged', status: 'Closed', substatus: 'Won' });
    });

    it('returns the exact body it would PUT, and writes nothing (body flag and query flag)', async () => {
      const id = SEED_IDS.newPending;
      const before = stack.sandbox.getReferral(id);
      for (const [event, query] of [
        [{ referralId: id, substatus: 'Won', dryRun: true }, ''],
        [{ referralId: id, substatus: 'Won' }, '?dryRun=true'],
      ] as const) {
        const answer = await stack.post(event, { query });
        expect(answer.status, answer.text).toBe(200);
        expect(answer.body).toMatchObject({
          outcome: 'dry-run',
          status: 'New',
          substatus: 'Pending',
          changes: [
            { path: '/status', from: 'New', to: 'Closed' },
            { path: '/substatus', from: 'Pending', to: 'Won' },
          ],
        });
        if (method === 'patch') {
          expect(answer.body).not.toHaveProperty('wouldPut');
          expect(answer.body.wouldPatch).toEqual({
            ifMatch: before?.eTag,
            operations: [
              { op: 'replace', path: '/status', value: 'Closed' },
              { op: 'replace', path: '/substatus', value: 'Won' },
            ],
          });
          continue;
        }
        const wouldPut = answer.body.wouldPut as { ifMatch: string; body: Record<string, unknown> };
        expect(wouldPut.ifMatch).toBe(before?.eTag);
        const { eTag: _e, ...rest } = before ?? {};
        expect(wouldPut.body).toEqual({ ...rest, eTag: before?.eTag, status: 'Closed', substatus: 'Won' });
      }
      expect(requestsOf(stack.sandbox, WRITE)).toEqual([]);
      expect(stack.sandbox.getReferral(id)).toEqual(before);
    });

    it('dry run of a no-op returns wouldPut (or wouldPatch) null', async () => {
      const answer = await stack.post({ referralId: SEED_IDS.activeAccepted, status: 'Active', dryRun: true });
      const would = method === 'patch' ? 'wouldPatch' : 'wouldPut';
      expect(answer.body).toMatchObject({ outcome: 'dry-run', changes: [], [would]: null });
    });
  });

  describe('errors decided locally: nothing is written', () => {
    it('400 invalid_event with one entry per field, and no upstream call at all', async () => {
      const tokensBefore = stack.identity.issued.length;
      const answer = await stack.post({
        referralId: SEED_IDS.newPending,
        substaus: 'Won',
        dealValue: 'lots',
        currency: 'euro',
      });
      expectProblem(answer, 400, 'invalid_event', false);
      const fields = (answer.body.errors as Array<{ field: string; pointer: string }>).map((e) => e.field).sort();
      expect(fields).toEqual(['currency', 'dealValue', 'substaus']);
      expect(stack.sandbox.requests).toEqual([]);
      expect(stack.identity.issued.length).toBe(tokensBefore);
    });

    it('400 for a body that is not JSON; 415 for another media type', async () => {
      expectProblem(await stack.post('{"referralId":', {}), 400, 'invalid_event', false);
      const form = await fetch(`${stack.hostUrl}/api/referral-updates`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'referralId=x&status=Active',
      });
      expect(form.status).toBe(415);
      expect(await form.json()).toMatchObject({ code: 'unsupported_media_type', retryable: false });
      expect(stack.sandbox.requests).toEqual([]);
    });

    it('422 transition_not_allowed names the current state and the allowed targets; no PUT', async () => {
      const answer = await stack.post({ referralId: SEED_IDS.activeAccepted, substatus: 'Pending' });
      expectProblem(answer, 422, 'transition_not_allowed', false);
      expect(answer.body).toMatchObject({
        referralId: SEED_IDS.activeAccepted,
        current: { status: 'Active', substatus: 'Accepted' },
        requested: { status: 'New', substatus: 'Pending' },
      });
      expect(answer.body.allowedTargets).toContainEqual({ status: 'Closed', substatus: 'Won' });
      expect(requestsOf(stack.sandbox, WRITE)).toEqual([]);
    });

    it('422 referral_closed for any change to a closed referral; no PUT', async () => {
      for (const id of [SEED_IDS.closedLost, SEED_IDS.closedExpired]) {
        const answer = await stack.post({ referralId: id, dealValue: 1 });
        expectProblem(answer, 422, 'referral_closed', false);
      }
      expect(requestsOf(stack.sandbox, WRITE)).toEqual([]);
    });

    it('422 for a referral in a state the rules do not know; no PUT', async () => {
      const answer = await stack.post({ referralId: SEED_IDS.unknownState, notes: 'x' });
      expectProblem(answer, 422, 'transition_not_allowed', false);
      expect(answer.body.allowedTargets).toEqual([]);
      expect(requestsOf(stack.sandbox, WRITE)).toEqual([]);
    });
  });

  describe('upstream answers', () => {
    it('404 referral_not_found', async () => {
      const answer = await stack.post({ referralId: '00000000-0000-0000-0000-000000000000', status: 'Active' });
      expectProblem(answer, 404, 'referral_not_found', false);
    });

    it('422 upstream_rejected carries the upstream error code and message', async () => {
      stack.sandbox.injectFault({
        method: WRITE,
        action: {
          type: 'status',
          status: 400,
          body: { error: { code: 'invalidRequest', message: 'Solution id is invalid' } },
        },
      });
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expectProblem(answer, 422, 'upstream_rejected', false);
      expect(answer.body.upstream).toEqual({ status: 400, code: 'invalidRequest', message: 'Solution id is invalid' });
      expect(requestsOf(stack.sandbox, WRITE)).toHaveLength(1);
    });

    it('502 upstream_auth_failed on 403, without retrying', async () => {
      stack.sandbox.injectFault({ method: 'GET', times: 5, action: { type: 'status', status: 403 } });
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expectProblem(answer, 502, 'upstream_auth_failed', false);
      expect(stack.sandbox.requests).toHaveLength(1);
    });

    it('a single 401 is retried once with a fresh token, then succeeds', async () => {
      stack.sandbox.injectFault({ method: 'GET', action: { type: 'status', status: 401 } });
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expect(answer.status, answer.text).toBe(200);
      expect(requestsOf(stack.sandbox, 'GET')).toHaveLength(2);
    });

    it('persistent 401 → 502 upstream_auth_failed', async () => {
      stack.sandbox.injectFault({ times: 10, action: { type: 'status', status: 401 } });
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expectProblem(answer, 502, 'upstream_auth_failed', false);
      expect(stack.sandbox.requests).toHaveLength(2);
    });

    it('429 with Retry-After is honoured, then the event applies', async () => {
      stack.sandbox.injectFault({ method: 'GET', action: { type: 'status', status: 429, retryAfter: '1' } });
      const started = Date.now();
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expect(answer.status, answer.text).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(requestsOf(stack.sandbox, 'GET')).toHaveLength(2);
    });

    it('503 upstream_unavailable after bounded retries of 503, with a Retry-After', async () => {
      stack.sandbox.injectFault({ times: 50, action: { type: 'status', status: 503 } });
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expectProblem(answer, 503, 'upstream_unavailable', true);
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(stack.sandbox.requests).toHaveLength(5);
    });

    it('502 upstream_error after bounded retries of 500 and of connection resets', async () => {
      stack.sandbox.injectFault({ times: 50, action: { type: 'status', status: 500 } });
      expectProblem(
        await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' }),
        502,
        'upstream_error',
        true,
      );
      stack.sandbox.reset();
      stack.sandbox.injectFault({ times: 50, action: { type: 'reset' } });
      expectProblem(
        await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' }),
        502,
        'upstream_error',
        true,
      );
    });

    it('transient GET failures are retried and the event applies', async () => {
      stack.sandbox.injectFault({ method: 'GET', times: 1, action: { type: 'status', status: 502 } });
      stack.sandbox.injectFault({ method: 'GET', times: 1, action: { type: 'reset' } });
      stack.sandbox.injectFault({ method: 'GET', times: 1, action: { type: 'status', status: 503 } });
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expect(answer.status, answer.text).toBe(200);
      expect(requestsOf(stack.sandbox, 'GET')).toHaveLength(4);
    });

    it('504 upstream_timeout when Partner Center does not answer in time', async () => {
      stack.sandbox.injectFault({ method: 'GET', times: 50, action: { type: 'delay', ms: 1500 } });
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expectProblem(answer, 504, 'upstream_timeout', true);
    });
  });

  describe('concurrency (412) and lost responses', () => {
    it('412 race: re-reads, re-applies the intent to the new state and keeps the other writer’s change', async () => {
      const id = SEED_IDS.newPending;
      stack.sandbox.injectFault({
        method: WRITE,
        action: {
          type: 'concurrent-edit',
          edit: (r) => {
            (r.details as Record<string, unknown>).notes = 'written by someone else';
          },
        },
      });
      const answer = await stack.post({ referralId: id, status: 'Active', dealValue: 42 });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.outcome).toBe('updated');
      expect(stack.sandbox.getReferral(id)).toMatchObject({
        status: 'Active',
        details: { notes: 'written by someone else', dealValue: 42 },
      });
      expect(requestsOf(stack.sandbox, WRITE)).toHaveLength(2);
      const [first, second] = requestsOf(stack.sandbox, WRITE);
      expect(first?.headers['if-match']).not.toBe(second?.headers['if-match']);
    });

    it('412 race where the other writer closed the referral: the rules are checked again → referral_closed', async () => {
      stack.sandbox.injectFault({
        method: WRITE,
        action: {
          type: 'concurrent-edit',
          edit: (r) => {
            r.status = 'Closed';
            r.substatus = 'Lost';
          },
        },
      });
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expectProblem(answer, 422, 'referral_closed', false);
      expect(requestsOf(stack.sandbox, WRITE)).toHaveLength(1);
    });

    it('409 conflict (retryable, Retry-After) when every write loses the race', async () => {
      let n = 0;
      stack.sandbox.injectFault({
        method: WRITE,
        times: 100,
        action: {
          type: 'concurrent-edit',
          edit: (r) => {
            r.statusReason = `edit ${++n}`;
          },
        },
      });
      const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active' });
      expectProblem(answer, 409, 'conflict', true);
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(requestsOf(stack.sandbox, WRITE)).toHaveLength(5);
      expect(stack.sandbox.getReferral(SEED_IDS.newPending)?.status).toBe('New');
    });

    it('a write whose response is lost is confirmed by a re-read, never sent twice', async () => {
      for (const action of [{ type: 'apply-then-reset' }, { type: 'apply-then-status', status: 504 }] as const) {
        stack.sandbox.reset();
        stack.sandbox.injectFault({ method: WRITE, action });
        const answer = await stack.post({ referralId: SEED_IDS.newPending, status: 'Active', dealValue: 7 });
        expect(answer.status, answer.text).toBe(200);
        expect(answer.body).toMatchObject({ outcome: 'updated', status: 'Active', substatus: 'Accepted' });
        expect((answer.body.changes as unknown[]).length).toBe(3);
        expect(requestsOf(stack.sandbox, WRITE)).toHaveLength(1);
        expect(answer.body.eTag).toBe(stack.sandbox.getReferral(SEED_IDS.newPending)?.eTag);
      }
    });
  });

  describe('the rest of the surface', () => {
    it('GET /api/health answers with version and no secrets', async () => {
      const response = await fetch(`${stack.hostUrl}/api/health`);
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({
        status: 'ok',
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
        node: expect.stringMatching(/^v22\./),
        partnerCenter: { baseUrl: stack.sandbox.url, loopback: true, writeMethod: method },
        auth: { mode: 'managed-identity' },
        telemetry: { status: 'off', ingestion: null },
        signatures: { enforced: false, secrets: 0 },
        delivery: { default: 'sync', available: true, queue: expect.any(String), poisonQueue: expect.any(String) },
        problems: [],
      });
      expect(text).not.toContain(stack.identity.header);
      for (const { token } of stack.identity.issued) expect(text).not.toContain(token);
    });

    it('only POST is routed to referral-updates', async () => {
      const response = await fetch(`${stack.hostUrl}/api/referral-updates`);
      expect(response.status).toBe(405);
    });

    it('logs one summary line per event with ids and outcome but no values, notes or tokens', async () => {
      const note = 'Call Sue Smith on +1 425 555 0100, sue.smith@contoso.com';
      const answer = await stack.post({
        referralId: SEED_IDS.activeAccepted,
        notes: note,
        name: 'Contoso secret deal',
      });
      expect(answer.status).toBe(200);
      const correlationId = answer.headers.get('ms-correlationid') ?? '';
      await stack.host.waitFor(new RegExp(`"correlationId":"${correlationId}"[^\\n]*`));
      const line =
        stack.host
          .output()
          .split('\n')
          .find((l) => l.includes(correlationId)) ?? '';
      expect(line).toContain('"outcome":"updated"');
      expect(line).toContain('"changedPaths":["/details/notes","/name"]');
      const output = stack.host.output();
      for (const secret of [
        note,
        'sue.smith',
        'Contoso secret deal',
        stack.identity.header,
        ...stack.identity.issued.map((t) => t.token),
      ]) {
        expect(output).not.toContain(secret);
      }
    });
  });
});

// A 429 with Retry-After pauses every call of the instance until then (docs/partner-center-api.md#throttling-and-retries):
// each of these tests gets an app of its own, so that the pause it causes does not reach the other tests.
describe('upstream answers: a long Retry-After (an app of its own)', () => {
  const own = useStack({}, { resetSandbox: true });
  it('503 upstream_unavailable, Retry-After passed on, when a Retry-After exceeds the cap (no long wait)', async () => {
    own.sandbox.injectFault({ method: 'GET', action: { type: 'status', status: 429, retryAfter: '3' } });
    const started = Date.now();
    const answer = await own.post({ referralId: SEED_IDS.newPending, status: 'Active' });
    expectProblem(answer, 503, 'upstream_unavailable', true);
    expect(answer.headers.get('retry-after')).toBe('3');
    expect(Date.now() - started).toBeLessThan(1000);
    // The instance is paused: the next event fails fast with what is left of the pause, and sends nothing.
    own.sandbox.clearRequests();
    const next = await own.post({ referralId: SEED_IDS.newReceived, status: 'Active' });
    expectProblem(next, 503, 'upstream_unavailable', true);
    expect(Number(next.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(own.sandbox.requests).toHaveLength(0);
  });
});

describe('upstream answers: throttling that outlasts the budget (an app of its own)', () => {
  const own = useStack({}, { resetSandbox: true });
  it('503 upstream_unavailable with Retry-After when throttling outlasts the budget (no pointless wait)', async () => {
    own.sandbox.injectFault({ times: 50, action: { type: 'status', status: 429, retryAfter: '30' } });
    const started = Date.now();
    const answer = await own.post({ referralId: SEED_IDS.newPending, status: 'Active' });
    expectProblem(answer, 503, 'upstream_unavailable', true);
    expect(answer.headers.get('retry-after')).toBe('30');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(own.sandbox.getReferral(SEED_IDS.newPending)?.status).toBe('New');
  });
});
