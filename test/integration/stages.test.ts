/**
 * `stage` end to end (#14): HTTP → local host (built app) → Partner Center sandbox. A CRM stage maps through
 * STAGE_MAP to the status it names and goes through the same transition rules and answers as a direct
 * status/substatus; blank (null) fields change nothing; `GET /api/stages` lists the map; a bad map is a
 * configuration problem health names, entry by entry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeReferral, SEED_IDS } from '../../dev/sandbox/seed.js';
import { problemSchema, updateResultSchema } from '../../shared/contract/responses.js';
import { stageListSchema } from '../../shared/contract/stages.js';
import { type AsyncStack, pollUntilFinal, startAsyncStack } from '../support/async.js';
import { requestsOf, type Stack, startHostProcess, startStack, useStack } from '../support/stack.js';

const MAP = {
  Prospecting: 'New',
  'Negotiation/Review': 'Active',
  'Closed Won': 'Closed/Won',
  'Closed Lost': 'Lost',
  'Needs Analysis': null,
};

describe('with STAGE_MAP set (a JSON object of your own)', () => {
  const stack = useStack({ STAGE_MAP: JSON.stringify(MAP) }, { resetSandbox: true });

  it('a stage maps to its status and substatus: written like a direct substatus, and the answer says what it mapped to', async () => {
    const id = SEED_IDS.newPending;
    const answer = await stack.post({ referralId: id, stage: '  closed WON ', dealValue: 125000 });
    expect(answer.status, answer.text).toBe(200);
    expect(updateResultSchema.parse(answer.body)).toMatchObject({
      outcome: 'updated',
      status: 'Closed',
      substatus: 'Won',
      stage: { name: 'Closed Won', target: 'Closed/Won' },
      changes: expect.arrayContaining([
        { path: '/status', from: 'New', to: 'Closed' },
        { path: '/substatus', from: 'Pending', to: 'Won' },
      ]),
    });
    expect(stack.sandbox.getReferral(id)).toMatchObject({
      status: 'Closed',
      substatus: 'Won',
      details: { dealValue: 125000 },
    });
  });

  it('the mapped change goes through the transition rules: Prospecting (New) on an Active referral is 422, nothing written', async () => {
    const id = SEED_IDS.activeAccepted;
    const answer = await stack.post({ referralId: id, stage: 'Prospecting' });
    expect(answer.status, answer.text).toBe(422);
    expect(problemSchema.parse(answer.body)).toMatchObject({
      code: 'transition_not_allowed',
      current: { status: 'Active', substatus: 'Accepted' },
      requested: { status: 'New' },
      stage: { name: 'Prospecting', target: 'New' },
    });
    expect(requestsOf(stack.sandbox, 'PUT')).toHaveLength(0);
    // A closed referral stays closed, as with a direct status.
    const closed = await stack.post({ referralId: SEED_IDS.closedWon, stage: 'Closed Lost' });
    expect(closed.status, closed.text).toBe(422);
    expect(closed.body).toMatchObject({
      code: 'referral_closed',
      stage: { name: 'Closed Lost', target: 'Closed/Lost' },
    });
  });

  it('a stage mapped to null changes no status: the other fields still apply; alone (even with occurredAt) it is unchanged, without a write', async () => {
    const id = SEED_IDS.newPending;
    const withNotes = await stack.post({ referralId: id, stage: 'Needs Analysis', notes: 'Discovery call done' });
    expect(withNotes.status, withNotes.text).toBe(200);
    expect(withNotes.body).toMatchObject({
      outcome: 'updated',
      status: 'New',
      substatus: 'Pending',
      stage: { name: 'Needs Analysis', target: null },
      changes: [{ path: '/details/notes', from: expect.anything(), to: 'Discovery call done' }],
    });
    const puts = requestsOf(stack.sandbox, 'PUT').length;
    const alone = await stack.post({ referralId: id, stage: 'needs analysis', occurredAt: new Date().toISOString() });
    expect(alone.status, alone.text).toBe(200);
    expect(updateResultSchema.parse(alone.body)).toMatchObject({
      outcome: 'unchanged',
      status: 'New',
      stage: { name: 'Needs Analysis', target: null },
      changes: [],
    });
    expect(requestsOf(stack.sandbox, 'PUT')).toHaveLength(puts);
  });

  it('400s before any call upstream: an unknown stage (listing the configured ones), a stage with a status', async () => {
    const unknown = await stack.post({ referralId: SEED_IDS.newPending, stage: 'Signed' });
    expect(unknown.status, unknown.text).toBe(400);
    const [entry] = (unknown.body.errors as Array<Record<string, string>>) ?? [];
    expect(entry).toMatchObject({ field: 'stage', code: 'unknown_stage' });
    expect(entry?.message).toContain('Prospecting, Negotiation/Review, Closed Won, Closed Lost, Needs Analysis');
    const ambiguous = await stack.post({ referralId: SEED_IDS.newPending, stage: 'Closed Won', substatus: 'Won' });
    expect(ambiguous.status, ambiguous.text).toBe(400);
    expect(ambiguous.body.errors).toEqual([expect.objectContaining({ field: 'stage', code: 'stage_ambiguous' })]);
    expect(stack.sandbox.requests).toHaveLength(0);
  });

  it('a redelivered stage event gets its stored answer, stage included; the same id with a direct substatus is another event', async () => {
    const event = { referralId: SEED_IDS.newReceived, eventId: 'stage-replay-1', stage: 'Negotiation/Review' };
    const first = await stack.post(event);
    expect(first.status, first.text).toBe(200);
    const again = await stack.post(event);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(first.body.stage).toEqual({ name: 'Negotiation/Review', target: 'Active/Accepted' });
    const direct = await stack.post({ referralId: SEED_IDS.newReceived, eventId: 'stage-replay-1', status: 'Active' });
    expect(direct.status, direct.text).toBe(422);
    expect(direct.body.code).toBe('idempotency_key_reused');
  });

  it('blank fields are absent fields: null changes nothing; all null is the usual 400', async () => {
    const id = SEED_IDS.newPending;
    const before = stack.sandbox.getReferral(id);
    const answer = await stack.post({
      referralId: id,
      eventId: null,
      stage: null,
      substatus: 'Received',
      notes: null,
      dealValue: null,
      currency: null,
      closingDate: null,
    });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.changes).toEqual([{ path: '/substatus', from: 'Pending', to: 'Received' }]);
    expect(stack.sandbox.getReferral(id)?.details).toEqual(before?.details);
    const blank = await stack.post({ referralId: id, stage: null, status: null, notes: null });
    expect(blank.status, blank.text).toBe(400);
    expect(blank.body.errors).toEqual([expect.objectContaining({ field: 'body', code: 'no_change' })]);
  });

  it('GET /api/stages lists the configured stages and their targets, for the connector dropdown', async () => {
    const response = await fetch(`${stack.hostUrl}/api/stages`);
    expect(response.status).toBe(200);
    expect(stageListSchema.parse(await response.json())).toEqual({
      source: 'custom',
      stages: [
        { name: 'Prospecting', target: 'New', title: 'Prospecting (New)' },
        { name: 'Negotiation/Review', target: 'Active/Accepted', title: 'Negotiation/Review (Active/Accepted)' },
        { name: 'Closed Won', target: 'Closed/Won', title: 'Closed Won (Closed/Won)' },
        { name: 'Closed Lost', target: 'Closed/Lost', title: 'Closed Lost (Closed/Lost)' },
        { name: 'Needs Analysis', target: null, title: 'Needs Analysis (no status change)' },
      ],
    });
  });
});

describe('without STAGE_MAP, and with a bad one', () => {
  let unset: Stack;
  beforeAll(async () => {
    unset = await startStack();
  });
  afterAll(async () => {
    await unset?.stop();
  });

  it('a stage with no map configured is a 400 saying how to configure one; the list is empty', async () => {
    const answer = await unset.post({ referralId: SEED_IDS.newPending, stage: 'Closed Won' });
    expect(answer.status, answer.text).toBe(400);
    const [entry] = (answer.body.errors as Array<Record<string, string>>) ?? [];
    expect(entry).toMatchObject({ field: 'stage', code: 'stage_map_missing' });
    expect(entry?.message).toContain('set the app setting STAGE_MAP');
    const list = await fetch(`${unset.hostUrl}/api/stages`);
    expect(await list.json()).toEqual({ source: null, stages: [] });
  });

  it('a bad map is refused at start-up, naming each bad entry (health lists the same: stage-map-health.test.ts)', async () => {
    await expect(
      startHostProcess({ STAGE_MAP: '{"Closed Won": "Closed/Won", "closed won ": "Won", "Qualify": "Active/Won"}' }),
    ).rejects.toThrow(
      /STAGE_MAP entry "closed won ": the same stage as "Closed Won"[\s\S]*STAGE_MAP entry "Qualify": substatus Won belongs to status Closed, not Active/,
    );
  });
});

describe('a queued stage event (asynchronous delivery)', () => {
  let stack: AsyncStack;
  beforeAll(async () => {
    stack = await startAsyncStack({ STAGE_MAP: 'hubspot' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('is mapped when accepted, applied by the queue with the same rules, and its final answer says what it mapped to', async () => {
    const referral = makeReferral();
    stack.sandbox.putReferral(referral);
    const [app] = stack.hosts;
    const accepted = await app?.postAsync({ referralId: referral.id, stage: 'closedwon', notes: null });
    expect(accepted?.status, accepted?.text).toBe(202);
    const final = await pollUntilFinal(String(accepted?.body.statusUrl), 15_000);
    expect(final.answer.status, final.answer.text).toBe(200);
    expect(updateResultSchema.parse(final.answer.body)).toMatchObject({
      outcome: 'updated',
      state: 'succeeded',
      status: 'Closed',
      substatus: 'Won',
      stage: { name: 'closedwon', target: 'Closed/Won' },
    });
    expect(stack.sandbox.getReferral(String(referral.id))).toMatchObject({ status: 'Closed', substatus: 'Won' });
  });
});
