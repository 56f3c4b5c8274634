/**
 * One deadline per event (UPSTREAM_BUDGET_MS, from the start of the event), through every call it makes,
 * with real parts on loopback: a hung Entra token endpoint (app-user mode) and a hung Table endpoint
 * (a TCP server that accepts and never answers). Every event answers a retryable 503/504 within its
 * budget; nothing is left half-done. No assertion on wall-clock time: answers and counts only.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import type { SecretStore } from '../../shared/auth/key-vault.js';
import { createTableIdempotencyStore } from '../../shared/idempotency/table-store.js';
import { type AuthWorld, SECRET_NAME, startAuthWorld } from '../support/auth-stack.js';
import {
  type Answer,
  type HostProcess,
  requestsOf,
  type Stack,
  startHostProcess,
  startStack,
} from '../support/stack.js';
import { testConfig } from '../support/use-cases.js';

const BUDGET = { UPSTREAM_BUDGET_MS: '3000' };
const IDS = [SEED_IDS.newPending, SEED_IDS.newReceived, SEED_IDS.activeSparse, SEED_IDS.closedWon];

/** Redelivers a retryable answer, as a webhook sender does, a few times; every answer, in order. */
async function deliver(post: () => Promise<Answer>): Promise<Answer[]> {
  const answers = [await post()];
  while (answers.length < 5 && answers.at(-1)?.body.retryable === true) answers.push(await post());
  return answers;
}

describe('a hung Entra token endpoint (app-user mode)', () => {
  let world: AuthWorld;
  let app: HostProcess;
  beforeAll(async () => {
    // Access tokens too short to keep (under 30 s): every event needs a redemption.
    world = await startAuthWorld({ accessTokenLifetimeSeconds: 20 });
    world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken());
    // Every rotation written back (no write-back interval): the test follows one rotation to Key Vault.
    app = await startHostProcess({ ...world.env, ...BUDGET, REFRESH_TOKEN_WRITE_INTERVAL_MINUTES: '0' });
  });
  afterAll(async () => {
    await app?.host.stop();
    await world?.close();
  });

  it('every waiting event answers 504 upstream_timeout, retryable; once Entra answers, the same event applies once', async () => {
    const warm = await app.post({ referralId: SEED_IDS.activeAccepted, notes: 'warm', dryRun: true });
    expect(warm.status, warm.text).toBe(200);
    world.sandbox.reset();
    const redemptionsBefore = world.entra.redemptions.length;
    const versionsBefore = world.vault.versions(SECRET_NAME).length;

    world.entra.hang(true);
    const id = `evt-hung-entra-${Date.now()}`;
    const event = { referralId: SEED_IDS.activeAccepted, notes: 'while Entra hangs' };
    const answers = await Promise.all([
      app.post(event, { headers: { 'webhook-id': id } }),
      ...IDS.map((referralId, i) =>
        app.post({ referralId, statusReason: `hung ${i}` }, { headers: { 'webhook-id': `${id}-${i}` } }),
      ),
      app.post({ referralId: SEED_IDS.newPending, notes: 'no id' }),
    ]);
    expect(answers).toHaveLength(6);
    for (const answer of answers) {
      expect(answer.status, answer.text).toBe(504);
      expect(answer.body).toMatchObject({ code: 'upstream_timeout', retryable: true });
    }
    // The events shared one redemption; it is still hanging. Nothing reached Partner Center, and no
    // refresh token was rotated (so nothing to write back half-way).
    const hung = world.entra.redemptions.slice(redemptionsBefore);
    expect(hung).toHaveLength(1);
    expect(hung[0]).toMatchObject({ grantType: 'refresh_token', status: 0 });
    expect(world.sandbox.requests).toEqual([]);
    expect(world.vault.versions(SECRET_NAME)).toHaveLength(versionsBefore);

    world.entra.hang(false);
    const deliveries = await deliver(() => app.post(event, { headers: { 'webhook-id': id } }));
    // The aborted event released its claim: no redelivery is held off as in_progress.
    expect(deliveries.map((a) => a.body.code)).not.toContain('in_progress');
    const applied = deliveries.at(-1) as Answer;
    expect(applied.status, applied.text).toBe(200);
    expect(applied.body.outcome).toBe('updated');
    expect(applied.headers.get('idempotent-replayed')).toBeNull();
    expect(requestsOf(world.sandbox, 'PUT')).toHaveLength(1);
    // The rotation of the redemption that worked was written back.
    expect(world.vault.versions(SECRET_NAME).length).toBeGreaterThan(versionsBefore);

    const replay = await app.post(event, { headers: { 'webhook-id': id } });
    expect(replay.text).toBe(applied.text);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(requestsOf(world.sandbox, 'PUT')).toHaveLength(1);
  });
});

describe('a hung Table endpoint (IDEMPOTENCY_STORE=table)', () => {
  let stack: Stack;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    // Accepts, reads, never answers.
    sockets.add(socket);
    socket.resume();
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const storage = String(process.env.AzureWebJobsStorage);
    const hung = storage.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`);
    expect(hung).not.toBe(storage);
    stack = await startStack({ AzureWebJobsStorage: hung, IDEMPOTENCY_STORE: 'table', ...BUDGET });
  });
  afterAll(async () => {
    await stack?.stop();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('events with an id (or an occurredAt) answer 503 idempotency_store_unavailable with Retry-After; nothing goes upstream', async () => {
    const answers = await Promise.all([
      ...IDS.map((referralId, i) =>
        stack.post(
          { referralId, status: 'Active' },
          { headers: { 'webhook-id': `evt-hung-table-${Date.now()}-${i}` } },
        ),
      ),
      stack.post({ referralId: SEED_IDS.activeAccepted, notes: 'ordered', occurredAt: '2026-11-20T10:00:00Z' }),
    ]);
    for (const answer of answers) {
      expect(answer.status, answer.text).toBe(503);
      expect(answer.body).toMatchObject({ code: 'idempotency_store_unavailable', retryable: true });
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect(sockets.size).toBeGreaterThan(0);
    expect(stack.sandbox.requests).toEqual([]);
    expect(stack.sandbox.stats()).toMatchObject({ requests: 0, puts: 0 });
  });
});

describe('the app-user token provider, in this process', () => {
  let world: AuthWorld;
  beforeAll(async () => {
    world = await startAuthWorld();
  });
  afterAll(async () => {
    await world?.close();
  });

  it('an event giving up during the write-back leaves the rotation to finish: written once, its token kept', async () => {
    world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken());
    const store = world.secretStore();
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    let writeStarted!: () => void;
    const writing = new Promise<void>((resolve) => {
      writeStarted = resolve;
    });
    const writeOptions: unknown[] = [];
    const slowWrites: SecretStore = {
      get: (name, options) => store.get(name, options),
      async set(name, value, contentType, options) {
        writeOptions.push(options);
        writeStarted();
        await gate;
        return store.set(name, value, contentType, options);
      },
    };
    const tokens = world.tokenProvider({ secrets: slowWrites });
    const versions = world.vault.versions(SECRET_NAME).length;
    const redemptions = world.entra.redemptions.length;

    const event = new AbortController();
    const waiting = tokens.getToken({ abortSignal: event.signal });
    await writing; // Entra has rotated the refresh token; its write-back is under way
    event.abort(new DOMException('the event deadline', 'TimeoutError'));
    await expect(waiting).rejects.toMatchObject({ code: 'upstream_timeout', status: 504, retryable: true });
    openGate();

    // The next event gets the token of that same redemption: no second one, and the rotation is stored.
    const token = await tokens.getToken({ abortSignal: AbortSignal.timeout(10_000) });
    expect(world.entra.isAccessToken(token)).toBe(true);
    expect(world.entra.redemptions.length - redemptions).toBe(1);
    expect(world.vault.versions(SECRET_NAME)).toHaveLength(versions + 1);
    // The write-back ran under Key Vault's own timeout only, never under an event's signal.
    expect(writeOptions).toEqual([undefined]);
    expect((await tokens.health()).warnings).toEqual([]);
  });
});

describe("the Table store, in this process: the event deadline ends a hung call, not the store's own bound", () => {
  const HOUR = 3_600_000;
  const hung: ServerResponse[] = [];
  // Answers "table exists" to the creation on first use, then never answers again.
  const server = createHttpServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    if (request.method === 'POST' && /\/Tables\b/.test(request.url ?? '')) {
      response.writeHead(409, { 'content-type': 'application/json', 'x-ms-error-code': 'TableAlreadyExists' });
      response.end(JSON.stringify({ 'odata.error': { code: 'TableAlreadyExists', message: { value: 'exists' } } }));
      return;
    }
    hung.push(response);
    onHung?.();
  });
  /** Called when a request is left hanging: the test aborts its signal then, not after a guessed delay. */
  let onHung: (() => void) | undefined;
  let store: ReturnType<typeof createTableIdempotencyStore>;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const storage = String(process.env.AzureWebJobsStorage).replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`);
    const { idempotency } = testConfig({ IDEMPOTENCY_STORE: 'table', AzureWebJobsStorage: storage });
    if (idempotency.store !== 'table') throw new Error('expected the table store');
    // The store's own bounds an hour long: only the caller's signal can end the call within the test.
    store = createTableIdempotencyStore(idempotency, { operationTimeoutMs: HOUR, setupTimeoutMs: HOUR });
  });
  afterAll(async () => {
    for (const response of hung) response.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('claim and ordering read both answer idempotency_store_unavailable (retryable) once the signal aborts', async () => {
    const calls = [
      (abortSignal: AbortSignal) => store.begin('evt-hung', 'f', { leaseMs: 1000, retentionMs: 1000, abortSignal }),
      (abortSignal: AbortSignal) => store.readOrdering('ref-hung', { abortSignal }),
    ];
    for (const call of calls) {
      const before = hung.length;
      const deadline = new AbortController();
      onHung = () => deadline.abort(new DOMException('the event deadline', 'TimeoutError'));
      const failure = await call(deadline.signal).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'idempotency_store_unavailable', retryable: true });
      expect(hung.length).toBe(before + 1);
    }
  });
});
