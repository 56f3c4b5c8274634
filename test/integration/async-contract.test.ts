/**
 * Contract v1.1, asynchronous delivery (issue #12, docs/async-delivery.md), answer by answer over real HTTP: the
 * built app under the local host (child process), its queue worker polling a queue of this file's own on the run's
 * Azurite, the Partner Center sandbox here. Short settings (test/support/async.ts ASYNC_FAST_ENV):
 * ASYNC_RETRY_MIN_SECONDS=1, ASYNC_RETRY_MAX_SECONDS=2, ASYNC_POLL_SECONDS=1, UPSTREAM_BUDGET_MS=2000, and
 * ASYNC_MAX_AGE_SECONDS=8 so that an event Partner Center keeps refusing is dead-lettered within seconds.
 *
 * Bodies are parsed with the contract's own zod schemas (shared/contract/async.ts, responses.ts).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { makeReferral } from '../../dev/sandbox/seed.js';
import {
  acceptedSchema,
  deliveryListSchema,
  deliverySummarySchema,
  pendingStatusSchema,
} from '../../shared/contract/async.js';
import { buildOpenApiDocument } from '../../shared/contract/openapi.js';
import { problemSchema, updateResultSchema } from '../../shared/contract/responses.js';
import {
  type AsyncHost,
  type AsyncStack,
  answerObservers,
  asAsyncHost,
  GUID,
  messagesIn,
  pollUntilFinal,
  request,
  sendToPoison,
  startAsyncStack,
  startOutage,
  until,
} from '../support/async.js';
import { openApi31Check, pointer, swagger20Check } from '../support/documents.js';
import { type Answer, REPO_ROOT, startHostProcess } from '../support/stack.js';

const MAX_AGE_SECONDS = 8;

let stack: AsyncStack;
let app: AsyncHost;

// Every answer the tests get is checked against the published documents: the OpenAPI 3.1 document (the response
// documented for its route, status and media type, with its headers), and for what Power Automate's queued action
// sees (the 202 of the POST and the final answers of the status URL) the connector's definitions.
const document = buildOpenApiDocument();
const check31 = openApi31Check(document);
const connector = JSON.parse(readFileSync(`${REPO_ROOT}connector/apiDefinition.swagger.json`, 'utf8'));
const check20 = swagger20Check(connector);
const CONNECTOR_ASYNC_ACTION = '/referral-updates?async=true';
const nonConforming: string[] = [];
/** What the tests were answered, per route: `<status> <state or outcome>` or the error code. */
const answered = new Set<string>();

/** The documented route of a URL of the app: its OpenAPI path template. */
function routeOf(url: string): string | undefined {
  const path = new URL(url).pathname.replace(/^\/api/, '');
  if (path === '/referral-updates') return path;
  if (/^\/referral-updates\/status\/[^/]+$/.test(path)) return '/referral-updates/status/{statusId}';
  if (path === '/referral-updates/events') return path;
  if (/^\/referral-updates\/events\/[^/]+$/.test(path)) return '/referral-updates/events/{eventId}';
  if (/^\/referral-updates\/events\/[^/]+\/replay$/.test(path)) return '/referral-updates/events/{eventId}/replay';
  return undefined;
}

function conforms(method: string, url: string, answer: Answer): void {
  const route = routeOf(url);
  const where = `${method} ${route} ${answer.status}`;
  const fail = (what: string): void => {
    nonConforming.push(`${where}: ${what}: ${answer.text.slice(0, 300)}`);
  };
  const key = String(answer.body.code ?? `${answer.status} ${answer.body.state ?? answer.body.outcome ?? ''}`.trim());
  answered.add(`${method} ${route} ${key}`);
  if (route === undefined) {
    fail('not a documented route');
    return;
  }
  const operation = (document.paths as Record<string, Record<string, { responses?: Record<string, unknown> }>>)[
    route
  ]?.[method.toLowerCase()];
  const documented = operation?.responses?.[String(answer.status)] as
    | { content?: Record<string, unknown>; headers?: Record<string, unknown> }
    | undefined;
  if (!documented) {
    fail('status not documented');
    return;
  }
  const mediaType = (answer.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
  if (!documented.content?.[mediaType]) {
    fail(`media type ${mediaType} not documented`);
    return;
  }
  const errors = check31(
    pointer('paths', route, method.toLowerCase(), 'responses', String(answer.status), 'content', mediaType, 'schema'),
    answer.body,
  );
  if (errors.length > 0) fail(`OpenAPI: ${JSON.stringify(errors).slice(0, 300)}`);
  const headers = Object.keys(documented.headers ?? {}).map((name) => name.toLowerCase());
  for (const name of ['location', 'retry-after', 'preference-applied', 'ms-correlationid']) {
    if (answer.headers.has(name) && !headers.includes(name)) fail(`header ${name} not documented`);
  }
  // What the connector's queued action gets: the 202 of the POST, then the status URL's final answer.
  const connectorSees =
    (route === '/referral-updates' && method === 'POST' && answer.status === 202) ||
    (route === '/referral-updates/status/{statusId}' &&
      answer.status !== 202 &&
      answer.body.code !== 'event_not_found');
  if (connectorSees) {
    const at = pointer('paths', CONNECTOR_ASYNC_ACTION, 'post', 'responses', String(answer.status));
    if (connector.paths[CONNECTOR_ASYNC_ACTION]?.post?.responses?.[String(answer.status)] === undefined) {
      fail('status not in the connector action');
    } else {
      const errors20 = check20(`${at}/schema`, answer.body);
      if (errors20.length > 0) fail(`connector: ${JSON.stringify(errors20).slice(0, 300)}`);
    }
  }
}

beforeAll(async () => {
  answerObservers.add(conforms);
  stack = await startAsyncStack({ ASYNC_MAX_AGE_SECONDS: String(MAX_AGE_SECONDS) });
  app = stack.hosts[0] as AsyncHost;
}, 30_000);

afterAll(async () => {
  answerObservers.delete(conforms);
  await stack?.stop();
});

/** A fresh referral in the sandbox (Active/Accepted unless `overrides` say otherwise): its id. */
function newReferral(overrides: Record<string, unknown> = { status: 'Active', substatus: 'Accepted' }): string {
  const referral = makeReferral(overrides);
  stack.sandbox.putReferral(referral);
  return referral.id;
}

const upstreamCalls = (referralId: string) => stack.sandbox.requests.filter((r) => r.referralId === referralId);

/** The 202 of an accepted event: headers and body as contract v1.1 says. */
function expectAccepted(answer: Answer, event: { referralId: string; eventId?: string }) {
  expect(answer.status, answer.text).toBe(202);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  const body = acceptedSchema.parse(answer.body);
  expect(body.referralId).toBe(event.referralId);
  if (event.eventId) expect(body.eventId).toBe(event.eventId);
  else expect(body.eventId).toMatch(GUID);
  expect(body.state).toBe('queued');
  // Absolute, same origin as the POST, under the /api route prefix; the Location header is the same URL.
  const location = answer.headers.get('location');
  expect(location).toBe(body.statusUrl);
  const url = new URL(body.statusUrl);
  expect(url.origin).toBe(app.hostUrl);
  expect(url.pathname).toMatch(/^\/api\/referral-updates\/status\/[^/]+$/);
  expect(Number(answer.headers.get('retry-after'))).toBe(1); // ASYNC_POLL_SECONDS
  expect(answer.headers.get('ms-correlationid')).toMatch(GUID);
  expect(answer.headers.get('preference-applied')).toBe('respond-async');
  return body;
}

function expectProblem(answer: Answer, status: number, code: string) {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = problemSchema.parse(answer.body);
  expect(problem.code).toBe(code);
  return problem;
}

/** The dead_lettered problem's extensions (docs/async-delivery.md#status-url), checked closer than the schema does. */
const deadLetteredExtensions = z.object({
  state: z.literal('dead_lettered'),
  eventId: z.string(),
  attempts: z.number().int().min(1),
  acceptedAt: z.iso.datetime({ offset: true }),
  lastAttemptAt: z.iso.datetime({ offset: true }),
  deadLetteredAt: z.iso.datetime({ offset: true }),
  lastError: z.strictObject({ code: z.string(), status: z.number().int() }),
  replay: z.strictObject({ method: z.literal('POST'), path: z.string() }),
});

function expectDeadLettered(answer: Answer, event: { referralId: string; eventId: string }) {
  const problem = expectProblem(answer, 424, 'dead_lettered');
  expect(problem).toMatchObject({ status: 424, retryable: false, referralId: event.referralId });
  const extensions = deadLetteredExtensions.parse(problem);
  expect(extensions.eventId).toBe(event.eventId);
  expect(extensions.replay.path).toBe(`/api/referral-updates/events/${encodeURIComponent(event.eventId)}/replay`);
  expect(problem.detail).toContain(extensions.replay.path);
  return extensions;
}

/** What a synchronous answer and the status URL's final answer of the same event share (ids, eTag and state aside). */
function comparable(body: Record<string, unknown>) {
  const { referralId: _r, eventId: _e, eTag: _t, state: _s, detail: _d, ...rest } = body;
  return rest;
}

describe('accepting: 202 with a status URL', () => {
  it('Prefer: respond-async: 202, Location, Retry-After, MS-CorrelationId, Preference-Applied; the status URL ends 200 succeeded, as a synchronous call answers', async () => {
    const asyncId = newReferral();
    const syncId = newReferral();
    const fields = { notes: 'Kick-off booked for the async twin', dealValue: 4321.5, currency: 'eur' };
    const eventId = `contract-ok-${randomUUID()}`;
    const correlationId = randomUUID();
    const accepted = await app.postAsync(
      { referralId: asyncId, eventId, ...fields },
      { headers: { 'MS-CorrelationId': correlationId } },
    );
    const body = expectAccepted(accepted, { referralId: asyncId, eventId });
    expect(accepted.headers.get('ms-correlationid')).toBe(correlationId);

    const final = await pollUntilFinal(body.statusUrl, 15_000);
    expect(final.answer.status, final.answer.text).toBe(200);
    expect(final.answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(final.answer.headers.get('ms-correlationid')).toMatch(GUID);
    const result = updateResultSchema.parse(final.answer.body);
    expect(result).toMatchObject({ referralId: asyncId, eventId, outcome: 'updated', state: 'succeeded' });
    expect(result.eTag).toBe(stack.sandbox.getReferral(asyncId)?.eTag);
    for (const pending of final.pending) pendingStatusSchema.parse(pending.body);

    // The same event, synchronously, on a twin referral: the same answer but for ids and eTag.
    const sync = await app.post({ referralId: syncId, eventId: `contract-sync-${randomUUID()}`, ...fields });
    expect(sync.status, sync.text).toBe(200);
    const syncResult = updateResultSchema.parse(sync.body);
    expect(syncResult.state).toBeUndefined();
    expect(Object.keys(final.answer.body).sort()).toEqual([...Object.keys(sync.body), 'state'].sort());
    expect(comparable(result)).toEqual(comparable(syncResult));
    expect(stack.sandbox.appliedWrites(asyncId)).toHaveLength(1);
  });

  it('?async=true without Prefer: 202 too; an event without an id gets a UUID, and keeps it', async () => {
    const referralId = newReferral();
    const accepted = await app.postAsync({ referralId, notes: 'no id given' }, { prefer: false, query: '?async=true' });
    const body = expectAccepted(accepted, { referralId });
    const final = await pollUntilFinal(body.statusUrl, 15_000);
    expect(final.answer.status, final.answer.text).toBe(200);
    expect(final.answer.body).toMatchObject({ eventId: body.eventId, state: 'succeeded', outcome: 'updated' });
    const item = await app.getEvent(body.eventId);
    expect(item.status, item.text).toBe(200);
    expect(deliverySummarySchema.parse(item.body)).toMatchObject({
      eventId: body.eventId,
      referralId,
      state: 'succeeded',
      changedPaths: ['/details/notes'],
    });
  });

  it('redelivery: the same id and body answers 202 with the same status URL (pending or final); another body 422 idempotency_key_reused', async () => {
    const referralId = newReferral();
    const event = { referralId, eventId: `contract-redeliver-${randomUUID()}`, externalReferenceId: 'crm-77' };
    const first = expectAccepted(await app.postAsync(event), event);
    const again = expectAccepted(await app.postAsync(event), event);
    expect(again.statusUrl).toBe(first.statusUrl);
    const final = await pollUntilFinal(first.statusUrl, 15_000);
    expect(final.answer.status, final.answer.text).toBe(200);
    // Once final, still the same 202 and URL (Power Automate may retry a POST whose 202 it lost).
    const late = await app.postAsync(event);
    expect(expectAccepted(late, event).statusUrl).toBe(first.statusUrl);
    const reused = await app.postAsync({ ...event, externalReferenceId: 'crm-78' });
    expectProblem(reused, 422, 'idempotency_key_reused');
    expect(stack.sandbox.appliedWrites(referralId)).toHaveLength(1);
    expect(stack.sandbox.getReferral(referralId)?.externalReferenceId).toBe('crm-77');
  });

  it('400 for a bad event or a bad async query: nothing stored, nothing sent upstream', async () => {
    const referralId = newReferral();
    const badEvent = await app.postAsync({ referralId, eventId: `bad-${randomUUID()}`, dealValue: 'lots' });
    const invalid = expectProblem(badEvent, 400, 'invalid_event');
    expect(invalid.errors?.map((e) => e.field)).toEqual(['dealValue']);
    const badQuery = await app.postAsync(
      { referralId, eventId: `bad-${randomUUID()}`, notes: 'fine' },
      { prefer: false, query: '?async=maybe' },
    );
    const invalidQuery = expectProblem(badQuery, 400, 'invalid_event');
    expect(invalidQuery.errors?.map((e) => e.field)).toEqual(['async']);
    expect(badEvent.headers.get('location')).toBeNull();
    const listed = await app.listEvents({ referralId });
    expect(listed.status, listed.text).toBe(200);
    expect(deliveryListSchema.parse(listed.body).items).toEqual([]);
    expect(upstreamCalls(referralId)).toEqual([]);
  });

  it('a dry run is answered synchronously even with Prefer: respond-async', async () => {
    const referralId = newReferral();
    const answer = await app.postAsync({ referralId, notes: 'dry', dryRun: true });
    expect(answer.status, answer.text).toBe(200);
    expect(updateResultSchema.parse(answer.body).outcome).toBe('dry-run');
    expect(answer.headers.get('preference-applied')).toBeNull();
    expect(stack.sandbox.appliedWrites(referralId)).toEqual([]);
  });

  it('503 async_unavailable (not retryable) with the memory idempotency store', async () => {
    // A queue of its own: its worker (without a deliveries store) must not take this file's messages.
    const memory = await startHostProcess({
      ...stack.env,
      IDEMPOTENCY_STORE: 'memory',
      ASYNC_QUEUE_NAME: `${stack.names.queue}-mem`,
      IDENTITY_ENDPOINT: app.identity.endpoint,
      IDENTITY_HEADER: app.identity.header,
    });
    try {
      const answer = await memory.post(
        { referralId: newReferral(), notes: 'x' },
        { headers: { Prefer: 'respond-async' } },
      );
      conforms('POST', `${memory.hostUrl}/api/referral-updates`, answer);
      const problem = expectProblem(answer, 503, 'async_unavailable');
      expect(problem.retryable).toBe(false);
    } finally {
      await memory.host.stop();
    }
  });
  it('503 delivery_unavailable (retryable, Retry-After) when the storage cannot be reached: nothing accepted, nothing sent', async () => {
    // Azurite's connection string with a port where nothing listens.
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = server.address() as { port: number };
        server.close(() => resolve(free));
      });
    });
    const dead = String(process.env.AzureWebJobsStorage).replace(/127\.0\.0\.1:\d+/g, `127.0.0.1:${port}`);
    const unreachable = await startHostProcess({
      ...stack.env,
      AzureWebJobsStorage: dead,
      ASYNC_QUEUE_NAME: `${stack.names.queue}-dead`,
      IDENTITY_ENDPOINT: app.identity.endpoint,
      IDENTITY_HEADER: app.identity.header,
    });
    try {
      const referralId = newReferral();
      const answer = await unreachable.post(
        { referralId, eventId: `contract-unavailable-${randomUUID()}`, notes: 'x' },
        { headers: { Prefer: 'respond-async' } },
      );
      conforms('POST', `${unreachable.hostUrl}/api/referral-updates`, answer);
      const problem = expectProblem(answer, 503, 'delivery_unavailable');
      expect(problem.retryable).toBe(true);
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(answer.headers.get('location')).toBeNull();
      expect(upstreamCalls(referralId)).toEqual([]);

      // The status URL and the operations, on an instance that cannot reach the store: 503 too, retryable.
      const okEvent = { referralId, eventId: `contract-unavailable-ok-${randomUUID()}`, notes: 'y' };
      const accepted = expectAccepted(await app.postAsync(okEvent), okEvent);
      const elsewhere = asAsyncHost(unreachable, app.identity);
      for (const reply of [
        await elsewhere.status(accepted.statusUrl),
        await elsewhere.listEvents({ referralId }),
        await elsewhere.getEvent(accepted.eventId),
        await elsewhere.replay(accepted.eventId),
      ]) {
        expect(expectProblem(reply, 503, 'delivery_unavailable').retryable).toBe(true);
        expect(Number(reply.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      await pollUntilFinal(accepted.statusUrl, 15_000);
    } finally {
      await unreachable.host.stop();
    }
  });
});

describe('one event, either mode', () => {
  it('a synchronous redelivery of an async event without occurredAt gets its stored answer (the fingerprint is the event as accepted)', async () => {
    const referralId = newReferral();
    const event = { referralId, eventId: `contract-both-${randomUUID()}`, name: 'Sent twice, two ways' };
    const accepted = expectAccepted(await app.postAsync(event), event);
    const final = await pollUntilFinal(accepted.statusUrl, 15_000);
    expect(final.answer.status, final.answer.text).toBe(200);
    const sync = await app.post(event);
    expect(sync.status, sync.text).toBe(200);
    expect(sync.headers.get('idempotent-replayed')).toBe('true');
    const { state: _state, ...asyncBody } = final.answer.body;
    expect(sync.body).toEqual(asyncBody);
    expect(stack.sandbox.appliedWrites(referralId)).toHaveLength(1);
  });

  it('an async event without occurredAt is ordered by the time it was accepted: an event that occurred before is stale', async () => {
    const referralId = newReferral();
    const newer = { referralId, eventId: `contract-order-new-${randomUUID()}`, notes: 'accepted now, no occurredAt' };
    const first = await pollUntilFinal(expectAccepted(await app.postAsync(newer), newer).statusUrl, 15_000);
    expect(first.answer.body).toMatchObject({ state: 'succeeded', outcome: 'updated' });
    const older = {
      referralId,
      eventId: `contract-order-old-${randomUUID()}`,
      notes: 'occurred an hour before the other was accepted',
      occurredAt: new Date(Date.now() - 3_600_000).toISOString(),
    };
    const second = await pollUntilFinal(expectAccepted(await app.postAsync(older), older).statusUrl, 15_000);
    expect(second.answer.status, second.answer.text).toBe(200);
    expect(second.answer.body).toMatchObject({ state: 'succeeded', outcome: 'stale' });
    expect(Date.parse(String(second.answer.body.lastAppliedOccurredAt))).toBeGreaterThan(Date.parse(older.occurredAt));
    expect(stack.sandbox.getReferral(referralId)?.details).toMatchObject({ notes: newer.notes });
    expect(stack.sandbox.appliedWrites(referralId)).toHaveLength(1);
  });

  it('a burst of queued events on one referral is applied in batches by the worker (group commit): the latest wins, far fewer calls', async () => {
    const referralId = newReferral();
    const before = stack.sandbox.requests.filter((r) => r.referralId === referralId).length;
    const base = Date.now() - 60_000;
    // 30 events, each later than the one before (none is stale before it is read): one by one, 2 calls each.
    const events = Array.from({ length: 30 }, (_, order) => ({
      referralId,
      eventId: `contract-burst-${randomUUID()}`,
      dealValue: 1000 + order,
      occurredAt: new Date(base + order * 1000).toISOString(),
    }));
    const accepted = await Promise.all(events.map(async (event) => expectAccepted(await app.postAsync(event), event)));
    const finals = await Promise.all(accepted.map((body) => pollUntilFinal(body.statusUrl, 20_000)));

    expect(finals.map((f) => f.answer.status)).toEqual(finals.map(() => 200));
    expect(stack.sandbox.getReferral(referralId)?.details).toMatchObject({ dealValue: 1029 });
    const calls = stack.sandbox.requests.filter((r) => r.referralId === referralId).length - before;
    // One by one: 28 calls and 14 writes in a run before group commit; batched: 4 calls, 2 writes.
    expect(calls / events.length).toBeLessThanOrEqual(0.5);
    expect(stack.sandbox.appliedWrites(referralId).length).toBeLessThanOrEqual(6);
  });

  it('DEFAULT_DELIVERY=async: 202 without asking, ?async=false answers synchronously', async () => {
    // Another instance of the same app (same table and queue), asynchronous by default.
    const instance = await stack.addHost({ DEFAULT_DELIVERY: 'async' });
    try {
      const referralId = newReferral();
      const byDefault = await instance.postAsync({ referralId, notes: 'async by default' }, { prefer: false });
      expect(byDefault.status, byDefault.text).toBe(202);
      const accepted = acceptedSchema.parse(byDefault.body);
      expect(new URL(accepted.statusUrl).origin).toBe(instance.hostUrl);
      expect((await pollUntilFinal(accepted.statusUrl, 15_000)).answer.status).toBe(200);
      const sync = await instance.postAsync(
        { referralId, notes: 'sync on request' },
        { prefer: false, query: '?async=false' },
      );
      expect(sync.status, sync.text).toBe(200);
      expect(updateResultSchema.parse(sync.body).outcome).toBe('updated');
      expect(stack.sandbox.appliedWrites(referralId)).toHaveLength(2);
    } finally {
      await instance.host.stop();
    }
  });
});

describe('the largest events', () => {
  it('an event near the body limit, and its answer (old and new values of each field), go through the store whole', async () => {
    const referralId = newReferral();
    const finals: Array<{ url: string; text: string }> = [];
    for (const letter of ['é', 'ü']) {
      // About 63 KB of UTF-8: just under MAX_BODY_BYTES (64 KiB); the answer names 61,000 characters of old and new notes.
      const event = {
        referralId,
        eventId: `contract-large-${letter}-${randomUUID()}`,
        notes: letter.repeat(30_000),
        statusReason: letter.repeat(1_000),
        name: 'n'.repeat(512),
      };
      const accepted = expectAccepted(await app.postAsync(event), event);
      const final = await pollUntilFinal(accepted.statusUrl, 15_000);
      expect(final.answer.status, final.answer.text.slice(0, 300)).toBe(200);
      const result = updateResultSchema.parse(final.answer.body);
      expect(result.changes.find((change) => change.path === '/details/notes')?.to).toBe(event.notes);
      finals.push({ url: accepted.statusUrl, text: final.answer.text });
    }
    // The first answer, read again: byte for byte the same.
    const [first] = finals;
    const again = await app.status(String(first?.url));
    expect(again.status).toBe(200);
    expect(again.text).toBe(first?.text);
    expect(stack.sandbox.getReferral(referralId)?.details).toMatchObject({ notes: 'ü'.repeat(30_000) });
  });
});

describe('the status URL', () => {
  it('404 event_not_found for a wrong token, an unknown id and a malformed id, with nothing else revealed', async () => {
    const referralId = newReferral();
    const eventId = `contract-404-${randomUUID()}`;
    const body = expectAccepted(await app.postAsync({ referralId, eventId, notes: 'secret-ish' }), {
      referralId,
      eventId,
    });
    const url = new URL(body.statusUrl);
    const statusId = url.pathname.split('/').at(-1) as string;
    const [idPart, token] = statusId.split('.') as [string, string];
    const flipped = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    const unknownId = Buffer.from(`no-such-${randomUUID()}`).toString('base64url');
    const urls = [
      `${app.hostUrl}/api/referral-updates/status/${idPart}.${flipped}`,
      `${app.hostUrl}/api/referral-updates/status/${unknownId}.${token}`,
      `${app.hostUrl}/api/referral-updates/status/not-a-status-id`,
    ];
    const answers = await Promise.all(urls.map((u) => request(u)));
    for (const answer of answers) {
      const problem = expectProblem(answer, 404, 'event_not_found');
      expect(problem.retryable).toBe(false);
      expect(answer.text).not.toContain(eventId);
      expect(answer.text).not.toContain(referralId);
      expect(Object.keys(answer.body).sort()).toEqual(Object.keys(answers[0]?.body ?? {}).sort());
    }
    await pollUntilFinal(body.statusUrl, 15_000);
  });

  it('pending: 202 with Location and Retry-After while Partner Center is slow (running) or failing (retrying), then 200', async () => {
    const referralId = newReferral();
    // The first GET is slow (the attempt is seen running), then every call fails with 503 until cleared.
    stack.sandbox.injectFault({ referralId, method: 'GET', times: 1, action: { type: 'delay', ms: 1_500 } });
    const outage = startOutage(stack.sandbox, { referralId });
    const eventId = `contract-pending-${randomUUID()}`;
    const body = expectAccepted(await app.postAsync({ referralId, eventId, statusReason: 'pending path' }), {
      referralId,
      eventId,
    });
    const seen: Answer[] = [];
    const retrying = await until(
      'the status URL says retrying',
      async () => {
        const answer = await app.status(body.statusUrl);
        seen.push(answer);
        return answer.status === 202 && answer.body.state === 'retrying' ? answer : undefined;
      },
      MAX_AGE_SECONDS * 1000,
      150,
    );
    outage.end();
    for (const answer of seen) {
      expect(answer.status, answer.text).toBe(202);
      expect(answer.headers.get('location')).toBe(body.statusUrl);
      const retryAfter = Number(answer.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      const pending = pendingStatusSchema.parse(answer.body);
      expect(pending).toMatchObject({ referralId, eventId });
    }
    expect(seen.map((a) => a.body.state)).toContain('running');
    const pending = pendingStatusSchema.parse(retrying.body);
    expect(pending.attempts).toBeGreaterThanOrEqual(1);
    expect(pending.lastError).toEqual({ code: 'upstream_unavailable', status: 503 });
    expect(Date.parse(String(pending.nextAttemptAt))).toBeGreaterThan(Date.now() - 5_000);

    const final = await pollUntilFinal(body.statusUrl, 15_000);
    expect(final.answer.status, final.answer.text).toBe(200);
    expect(final.answer.body).toMatchObject({ state: 'succeeded', outcome: 'updated' });
    expect(stack.sandbox.appliedWrites(referralId)).toHaveLength(1);
  });

  it('final 422 transition_not_allowed: state failed, the problem a synchronous call answers', async () => {
    const asyncId = newReferral();
    const syncId = newReferral();
    const eventId = `contract-422-${randomUUID()}`;
    const body = expectAccepted(await app.postAsync({ referralId: asyncId, eventId, substatus: 'Pending' }), {
      referralId: asyncId,
      eventId,
    });
    const final = await pollUntilFinal(body.statusUrl, 15_000);
    expect(final.answer.status, final.answer.text).toBe(422);
    expect(final.answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = problemSchema.parse(final.answer.body);
    expect(problem).toMatchObject({
      state: 'failed',
      code: 'transition_not_allowed',
      referralId: asyncId,
      current: { status: 'Active', substatus: 'Accepted' },
      requested: { status: 'New', substatus: 'Pending' },
    });
    const sync = await app.post({ referralId: syncId, substatus: 'Pending' });
    expect(sync.status).toBe(422);
    const syncProblem = problemSchema.parse(sync.body);
    expect(syncProblem.state).toBeUndefined();
    expect(comparable(problem)).toEqual(comparable(syncProblem));
    expect(stack.sandbox.appliedWrites(asyncId)).toEqual([]);
    const item = deliverySummarySchema.parse((await app.getEvent(eventId)).body);
    expect(item.state).toBe('failed');
    expect(item.lastError).toEqual({ code: 'transition_not_allowed', status: 422 });
  });
});

describe('a final 404', () => {
  it('referral_not_found: the status URL answers 404 with state failed (not event_not_found), as documented', async () => {
    const referralId = `missing-${randomUUID()}`;
    const eventId = `contract-404-final-${randomUUID()}`;
    const body = expectAccepted(await app.postAsync({ referralId, eventId, notes: 'nobody home' }), {
      referralId,
      eventId,
    });
    const final = await pollUntilFinal(body.statusUrl, 15_000);
    const problem = expectProblem(final.answer, 404, 'referral_not_found');
    expect(problem).toMatchObject({ state: 'failed', referralId });
    expect(deliverySummarySchema.parse((await app.getEvent(eventId)).body)).toMatchObject({
      state: 'failed',
      lastError: { code: 'referral_not_found', status: 404 },
    });
  });
});

describe('giving up, operations and replay', () => {
  it('dead_lettered 424 with the last error after ASYNC_MAX_AGE_SECONDS of 503; listed without customer values; a replay after recovery applies it once; 409 for other states', async () => {
    const referralId = newReferral();
    const notes = `customer notes ${randomUUID()}`;
    const dealValue = 98765.4321;
    const eventId = `contract-dead-${randomUUID()}`;
    const outage = startOutage(stack.sandbox, { referralId });
    let body: z.infer<typeof acceptedSchema>;
    try {
      body = expectAccepted(await app.postAsync({ referralId, eventId, notes, dealValue }), { referralId, eventId });
      const final = await pollUntilFinal(body.statusUrl, (MAX_AGE_SECONDS + 12) * 1000);
      const dead = expectDeadLettered(final.answer, { referralId, eventId });
      expect(dead.lastError).toEqual({ code: 'upstream_unavailable', status: 503 });
      expect(Date.parse(dead.deadLetteredAt)).toBeGreaterThanOrEqual(Date.parse(dead.acceptedAt));
      // Given up only at its max age (less one retry delay: at most ASYNC_RETRY_MAX_SECONDS, or a 1 s Retry-After).
      expect(Date.parse(dead.deadLetteredAt)).toBeGreaterThanOrEqual(
        Date.parse(dead.acceptedAt) + (MAX_AGE_SECONDS - 3) * 1000,
      );
      expect(final.states.every((s) => ['queued', 'running', 'retrying'].includes(s))).toBe(true);
      expect(stack.sandbox.appliedWrites(referralId)).toEqual([]);

      // Operations: by state (both spellings) and by referral, ids/states/times/codes only.
      for (const state of ['dead_lettered', 'dead-lettered']) {
        const list = await app.listEvents({ state });
        expect(list.status, list.text).toBe(200);
        const parsed = deliveryListSchema.parse(list.body);
        expect(parsed.items.map((i) => i.eventId)).toContain(eventId);
        expect(parsed.items.every((i) => i.state === 'dead_lettered')).toBe(true);
        expect(list.text).not.toContain(notes);
        expect(list.text).not.toContain(String(dealValue));
      }
      const byReferral = await app.listEvents({ referralId });
      const items = deliveryListSchema.parse(byReferral.body).items;
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ eventId, referralId, state: 'dead_lettered', lastError: dead.lastError });
      const one = await app.getEvent(eventId);
      expect(deliverySummarySchema.parse(one.body)).toMatchObject({ eventId, state: 'dead_lettered' });
      expect(one.text).not.toContain(notes);
      expectProblem(await app.getEvent(`no-such-${randomUUID()}`), 404, 'event_not_found');

      // The redelivery of a dead-lettered event still answers 202 with its status URL (no new attempt).
      expect(
        expectAccepted(await app.postAsync({ referralId, eventId, notes, dealValue }), { referralId, eventId })
          .statusUrl,
      ).toBe(body.statusUrl);
      expect((await app.status(body.statusUrl)).status).toBe(424);
    } finally {
      outage.end();
    }

    // Partner Center is back: the replay queues it again under the same id and it is applied once.
    const replay = await app.replay(eventId);
    expect(replay.status, replay.text).toBe(202);
    const replayed = acceptedSchema.parse(replay.body);
    expect(replayed.eventId).toBe(eventId);
    expect(replay.headers.get('location')).toBe(replayed.statusUrl);
    const final = await pollUntilFinal(replayed.statusUrl, 15_000);
    expect(final.answer.status, final.answer.text).toBe(200);
    expect(final.answer.body).toMatchObject({ state: 'succeeded', outcome: 'updated', eventId });
    expect((await app.status(body.statusUrl)).status).toBe(200);
    const writes = stack.sandbox.appliedWrites(referralId);
    expect(writes).toHaveLength(1);
    expect(writes[0]?.fields).toMatchObject({ details: { notes, dealValue } });

    // Only a dead-lettered event can be replayed.
    const again = await app.replay(eventId);
    const conflict = expectProblem(again, 409, 'replay_not_allowed');
    expect(conflict.retryable).toBe(false);
    expect(conflict.detail).toContain('succeeded');
    expectProblem(await app.replay(`no-such-${randomUUID()}`), 404, 'event_not_found');
    expect(stack.sandbox.appliedWrites(referralId)).toHaveLength(1);
  }, 45_000);

  it('the operations list pages with its continuation token; a bad query (state, top, token) is a 400 naming it', async () => {
    const referralId = newReferral();
    const ids = [1, 2, 3].map((i) => `contract-page-${i}-${randomUUID()}`);
    const urls = await Promise.all(
      ids.map(
        async (eventId, i) =>
          expectAccepted(await app.postAsync({ referralId, eventId, notes: `page ${i}` }), { referralId, eventId })
            .statusUrl,
      ),
    );
    await Promise.all(urls.map((url) => pollUntilFinal(url, 15_000)));
    const seen: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 5; page++) {
      const answer = await app.listEvents({ referralId, top: '1', ...(token ? { continuationToken: token } : {}) });
      expect(answer.status, answer.text).toBe(200);
      const list = deliveryListSchema.parse(answer.body);
      expect(list.items.length).toBeLessThanOrEqual(1);
      seen.push(...list.items.map((item) => item.eventId));
      token = list.continuationToken;
      if (!token) break;
    }
    expect(seen.sort()).toEqual([...ids].sort());
    for (const [query, field] of [
      [{ state: 'lost' }, 'state'],
      [{ top: '0' }, 'top'],
      [{ continuationToken: 'not-a-token-of-this-list' }, 'continuationToken'],
    ] as const) {
      const answer = await app.listEvents(query);
      const problem = expectProblem(answer, 400, 'invalid_event');
      expect(problem.errors?.map((e) => e.field)).toEqual([field]);
    }
  });

  it('a message in the poison queue ends its event dead_lettered (poison_message), visible; a replay then applies it', async () => {
    const referralId = newReferral();
    const eventId = `contract-poison-${randomUUID()}`;
    const outage = startOutage(stack.sandbox, { referralId });
    let statusUrl: string;
    try {
      statusUrl = expectAccepted(await app.postAsync({ referralId, eventId, name: 'Poisoned referral' }), {
        referralId,
        eventId,
      }).statusUrl;
      await until('the event is retrying', async () => {
        const answer = await app.status(statusUrl);
        return answer.body.state === 'retrying' ? answer : undefined;
      });
      // What the host does after maxDequeueCount failed invocations: the message moves to <queue>-poison.
      await sendToPoison(stack.names.queue, eventId);
      const final = await pollUntilFinal(statusUrl, 15_000);
      const dead = expectDeadLettered(final.answer, { referralId, eventId });
      expect(dead.lastError).toEqual({ code: 'poison_message', status: 500 });
      const listed = await app.listAll({ state: 'dead_lettered', referralId });
      expect(listed.map((i) => i.eventId)).toEqual([eventId]);
      // Partner Center stays down until an attempt that was running when the poison handler gave the event up has
      // ended (within its budget): one that got through after that would write the event and record its success
      // over dead_lettered, so the 424 checked below would not be deterministic. The worker's next (delayed)
      // message finds the event final.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
    } finally {
      outage.end();
    }
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await app.status(statusUrl)).status).toBe(424);
    expect(stack.sandbox.appliedWrites(referralId)).toEqual([]);
    const replay = await app.replay(eventId);
    expect(replay.status, replay.text).toBe(202);
    const final = await pollUntilFinal(statusUrl, 15_000);
    expect(final.answer.status, final.answer.text).toBe(200);
    expect(stack.sandbox.appliedWrites(referralId)).toHaveLength(1);

    // A poison message for an event already final changes nothing; one for no event, or not ours, is only logged.
    await sendToPoison(stack.names.queue, eventId);
    await sendToPoison(stack.names.queue, `no-such-${randomUUID()}`);
    await until(
      'the poison handler has handled both',
      async () => {
        const output = app.host.output();
        return ['DELIVERY_POISON_ALREADY_FINAL', 'DELIVERY_EVENT_NOT_FOUND'].every((code) => output.includes(code))
          ? true
          : undefined;
      },
      10_000,
    );
    expect((await app.status(statusUrl)).status).toBe(200);
    expect(await messagesIn(`${stack.names.queue}-poison`)).toBe(0);
  }, 45_000);
});

describe('the documents', () => {
  it('every answer above is the one the OpenAPI document (and, for the queued action, the connector) describes', () => {
    expect(nonConforming).toEqual([]);
  });

  it('between them, the tests above were given every answer of contract v1.1', () => {
    const expected = [
      'POST /referral-updates 202 queued',
      'POST /referral-updates invalid_event',
      'POST /referral-updates idempotency_key_reused',
      'POST /referral-updates async_unavailable',
      'POST /referral-updates delivery_unavailable',
      'POST /referral-updates 200 dry-run',
      // queued: the first poll right after a 202 (the worker polls every 250 ms), many times over in this file.
      'GET /referral-updates/status/{statusId} 202 queued',
      'GET /referral-updates/status/{statusId} 202 running',
      'GET /referral-updates/status/{statusId} 202 retrying',
      'GET /referral-updates/status/{statusId} 200 succeeded',
      'GET /referral-updates/status/{statusId} transition_not_allowed',
      'GET /referral-updates/status/{statusId} referral_not_found',
      'GET /referral-updates/status/{statusId} dead_lettered',
      'GET /referral-updates/status/{statusId} event_not_found',
      'GET /referral-updates/events 200',
      'GET /referral-updates/events invalid_event',
      'GET /referral-updates/events/{eventId} 200 succeeded',
      'GET /referral-updates/events/{eventId} 200 dead_lettered',
      'GET /referral-updates/events/{eventId} 200 failed',
      'GET /referral-updates/events/{eventId} event_not_found',
      'POST /referral-updates/events/{eventId}/replay 202 queued',
      'POST /referral-updates/events/{eventId}/replay replay_not_allowed',
      'POST /referral-updates/events/{eventId}/replay event_not_found',
      'GET /referral-updates/status/{statusId} delivery_unavailable',
      'GET /referral-updates/events delivery_unavailable',
      'GET /referral-updates/events/{eventId} delivery_unavailable',
      'POST /referral-updates/events/{eventId}/replay delivery_unavailable',
    ];
    expect(expected.filter((answer) => !answered.has(answer))).toEqual([]);
  });
});
