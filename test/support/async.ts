/**
 * Asynchronous delivery (contract v1.1, docs/async-delivery.md) over real HTTP: the Partner Center sandbox and the
 * managed-identity emulator in the test process, one or more app processes (the built app under the local host,
 * as `npm start` runs it) on the run's one Azurite (test/support/global-setup.ts), sharing a table and a queue of
 * their own, so that test files running in parallel never see each other's events or messages.
 *
 * Short settings ({@link ASYNC_FAST_ENV}) make hours of Partner Center trouble fit in seconds: retries after 1–2 s,
 * polled every second, a 2 s budget per attempt, and the local host's dev-only knobs
 * (docs/local-development.md#queue-triggers): polling back-off at most 250 ms, and, for the suites that kill an
 * instance, a short lease on received messages.
 *
 * Also here: the event plans and the per-field model of the async suites (what each referral must hold at the
 * end, from test/support/reliability/model.ts's fields), and the sandbox ledger checks (lost, doubled).
 */

import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueServiceClient } from '@azure/storage-queue';
import { type IdentityEmulator, startIdentityEmulator } from '../../dev/emulators/identity.js';
import { mulberry32 } from '../../dev/sandbox/random-faults.js';
import { makeReferral } from '../../dev/sandbox/seed.js';
import {
  type PartnerCenterSandbox,
  type RecordedRequest,
  startPartnerCenterSandbox,
} from '../../dev/sandbox/server.js';
import { encodeMessage } from '../../shared/delivery/queue.js';
import { adapterFields, enc, FIELDS, type Field, groupOf, type Json, type JsonRecord } from './reliability/model.js';
import { type Answer, type HostProcess, REPO_ROOT, startHostProcess } from './stack.js';

/** The async settings the suites use (besides ASYNC_MAX_AGE_SECONDS, which some set tiny). */
export const ASYNC_FAST_ENV = {
  ASYNC_RETRY_MIN_SECONDS: '1',
  ASYNC_RETRY_MAX_SECONDS: '2',
  ASYNC_POLL_SECONDS: '1',
  UPSTREAM_BUDGET_MS: '2000',
  UPSTREAM_REQUEST_TIMEOUT_MS: '800',
  RETRY_BASE_DELAY_MS: '5',
  RETRY_MAX_DELAY_MS: '500',
  // A claim held by another attempt: answer `in_progress` (retried by the queue) after 1 s rather than 10.
  IDEMPOTENCY_WAIT_MS: '1000',
  // The local host's dev-only knob: poll an empty queue at least every 250 ms (2 s by default).
  LOCAL_HOST_QUEUE_MAX_POLLING_MS: '250',
};

/** A table and a queue of one test file's own (Azurite is shared by the test files running in parallel). */
export function asyncNames(): { table: string; queue: string } {
  const hex = randomUUID().replaceAll('-', '');
  // Queue names: 3–63 lowercase letters, digits and single hyphens; `<name>-poison` must fit too.
  return { table: `t${hex}`, queue: `async-${hex.slice(0, 24)}` };
}

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  let body: Record<string, unknown> = {};
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { unparsable: text };
    }
  }
  return { status: response.status, headers: response.headers, text, body };
}

/** Called with every answer the helpers here get (method, URL, answer): e.g. to check them against the documents. */
export type AnswerObserver = (method: string, url: string, answer: Answer) => void;
export const answerObservers = new Set<AnswerObserver>();

function observed(method: string, url: string, answer: Answer): Answer {
  for (const observer of answerObservers) observer(method, url, answer);
  return answer;
}

export async function request(url: string, init: RequestInit = {}): Promise<Answer> {
  return observed(init.method ?? 'GET', url, await answerOf(await fetch(url, init)));
}

/** One app process, with the async routes. */
export interface AsyncHost extends HostProcess {
  /** POST /api/referral-updates asking for the asynchronous answer (`Prefer: respond-async` unless `prefer: false`). */
  postAsync(
    event: unknown,
    init?: { headers?: Record<string, string>; query?: string; prefer?: boolean },
  ): Promise<Answer>;
  /** GET /api/referral-updates/events[?query] (function key not enforced locally). */
  listEvents(query?: Record<string, string>): Promise<Answer>;
  /** Every item of the ops list for `query`, following continuation tokens. */
  listAll(query?: Record<string, string>): Promise<Array<Record<string, unknown>>>;
  getEvent(eventId: string): Promise<Answer>;
  replay(eventId: string): Promise<Answer>;
  /** A status URL (of whichever host accepted) asked of this host. */
  status(statusUrl: string): Promise<Answer>;
  /** Kills the process at once (SIGKILL): no shutdown, no message given back. */
  kill(): Promise<void>;
  /** This instance's own managed-identity emulator: its tokens tell its upstream requests from the others'. */
  identity: IdentityEmulator;
}

export function asAsyncHost(app: HostProcess, identity: IdentityEmulator): AsyncHost {
  const base = app.hostUrl;
  const events = `${base}/api/referral-updates/events`;
  const self: AsyncHost = {
    ...app,
    identity,
    async postAsync(event, init = {}) {
      const prefer: Record<string, string> = init.prefer === false ? {} : { Prefer: 'respond-async' };
      const answer = await app.post(event, {
        headers: { ...prefer, ...init.headers },
        ...(init.query ? { query: init.query } : {}),
      });
      return observed('POST', `${base}/api/referral-updates${init.query ?? ''}`, answer);
    },
    listEvents: (query = {}) =>
      request(`${events}${query && Object.keys(query).length ? `?${new URLSearchParams(query)}` : ''}`),
    async listAll(query = {}) {
      const items: Array<Record<string, unknown>> = [];
      let token: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const answer = await self.listEvents({ top: '100', ...query, ...(token ? { continuationToken: token } : {}) });
        if (answer.status !== 200)
          throw new Error(`GET events ${JSON.stringify(query)}: ${answer.status} ${answer.text}`);
        items.push(...((answer.body.items as Array<Record<string, unknown>>) ?? []));
        token = answer.body.continuationToken as string | undefined;
        if (!token) return items;
      }
      throw new Error('GET events: more than 1000 pages');
    },
    getEvent: (eventId) => request(`${events}/${encodeURIComponent(eventId)}`),
    replay: (eventId) => request(`${events}/${encodeURIComponent(eventId)}/replay`, { method: 'POST' }),
    status: (statusUrl) => request(onHost(statusUrl, base)),
    async kill() {
      if (app.host.child.exitCode === null && app.host.child.signalCode === null) app.host.child.kill('SIGKILL');
      await app.host.exited;
    },
  };
  return self;
}

/** The same path and query on another host (instances of one app answer each other's status URLs). */
export function onHost(url: string, hostUrl: string): string {
  const parsed = new URL(url);
  return `${hostUrl}${parsed.pathname}${parsed.search}`;
}

export interface AsyncStack {
  sandbox: PartnerCenterSandbox;
  hosts: AsyncHost[];
  names: { table: string; queue: string };
  /** The settings every instance shares (the identity emulator's are each instance's own). */
  env: Record<string, string>;
  /** Starts one more instance of the same app (same table, same queue). */
  addHost(extra?: Record<string, string>): Promise<AsyncHost>;
  /** The sandbox's requests made by `host` (by the tokens its identity emulator issued), with their ledger `seq`. */
  requestsBy(host: AsyncHost): Array<RecordedRequest & { seq: number }>;
  stop(): Promise<void>;
}

/**
 * The sandbox here, `instances` app processes sharing one table and one queue on Azurite, each with a
 * managed-identity emulator of its own (so that every upstream request can be traced to its instance).
 */
export async function startAsyncStack(env: Record<string, string> = {}, instances = 1): Promise<AsyncStack> {
  const identities: IdentityEmulator[] = [];
  const sandbox = await startPartnerCenterSandbox({
    acceptToken: (token) => identities.some((identity) => identity.isIssued(token)),
  });
  const names = asyncNames();
  const shared = {
    PARTNER_CENTER_BASE_URL: sandbox.url,
    ...ASYNC_FAST_ENV,
    IDEMPOTENCY_TABLE_NAME: names.table,
    ASYNC_QUEUE_NAME: names.queue,
    ...env,
  };
  const hosts: AsyncHost[] = [];
  const addHost = async (extra: Record<string, string> = {}) => {
    const identity = await startIdentityEmulator();
    identities.push(identity);
    const app = await startHostProcess({
      ...shared,
      IDENTITY_ENDPOINT: identity.endpoint,
      IDENTITY_HEADER: identity.header,
      ...extra,
    });
    const host = asAsyncHost(app, identity);
    hosts.push(host);
    return host;
  };
  const stop = async () => {
    await Promise.all(hosts.map((h) => h.host.stop()));
    await sandbox.close();
    await Promise.all(identities.map((identity) => identity.close()));
  };
  try {
    await Promise.all(Array.from({ length: instances }, () => addHost()));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    sandbox,
    hosts,
    names,
    env: shared,
    addHost,
    requestsBy(host) {
      // A request's position in `requests` is its ledger seq - 1 (both counted in arrival order since reset()).
      return sandbox.requests.flatMap((request, i) => {
        const token = request.headers.authorization?.replace(/^Bearer /, '') ?? '';
        return host.identity.isIssued(token) ? [{ ...request, seq: i + 1 }] : [];
      });
    },
    stop,
  };
}

/** Polls `probe` until it returns a value (not undefined); throws with `what` (and the last value) when it never does. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  limitMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs} ms: ${what}`);
    await sleep(everyMs);
  }
}

export interface Final {
  answer: Answer;
  /** The pending states seen on the way, in order (repeats collapsed). */
  states: string[];
  /** Every pending answer (202) seen. */
  pending: Answer[];
  polls: number;
}

/**
 * Polls a status URL like Power Automate does: while it answers 202, waits its Retry-After (capped at `capMs`,
 * tests have no minutes to spare) and asks `Location` (else the same URL) again; resolves with the first
 * non-202 answer. Throws after `limitMs`.
 */
export async function pollUntilFinal(
  statusUrl: string,
  limitMs = 20_000,
  options: { capMs?: number; hostUrl?: string } = {},
): Promise<Final> {
  const capMs = options.capMs ?? 500;
  const deadline = Date.now() + limitMs;
  let url = options.hostUrl ? onHost(statusUrl, options.hostUrl) : statusUrl;
  const states: string[] = [];
  const pending: Answer[] = [];
  for (let polls = 1; ; polls++) {
    const answer = await request(url);
    if (answer.status !== 202) return { answer, states, pending, polls };
    pending.push(answer);
    const state = String(answer.body.state);
    if (states.at(-1) !== state) states.push(state);
    if (Date.now() > deadline) {
      throw new Error(`${statusUrl} still pending after ${limitMs} ms (states ${states.join(' → ')}): ${answer.text}`);
    }
    const retryAfter = Number(answer.headers.get('retry-after'));
    const waitMs = Number.isFinite(retryAfter) && retryAfter >= 0 ? Math.min(retryAfter * 1000, capMs) : capMs;
    const location = answer.headers.get('location');
    if (location) url = options.hostUrl ? onHost(location, options.hostUrl) : location;
    await sleep(waitMs);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The queue, directly (for the poison queue test)

export function queueService(): QueueServiceClient {
  const connection = process.env.AzureWebJobsStorage;
  if (!connection) throw new Error('AzureWebJobsStorage is not set: test/support/global-setup.ts starts Azurite');
  return QueueServiceClient.fromConnectionString(connection);
}

/** Puts `{ v: 1, eventId }` (base64, as the trigger expects) into `<queue>-poison`, as the host does after maxDequeueCount. */
export async function sendToPoison(queue: string, eventId: string): Promise<void> {
  const poison = queueService().getQueueClient(`${queue}-poison`);
  await poison.createIfNotExists();
  await poison.sendMessage(encodeMessage({ v: 1, eventId }));
}

/** Messages in a queue, visible or not (approximate, as Queue Storage counts them). */
export async function messagesIn(queue: string): Promise<number> {
  const client = queueService().getQueueClient(queue);
  if (!(await client.exists())) return 0;
  return (await client.getProperties()).approximateMessagesCount ?? 0;
}

// ---------------------------------------------------------------------------------------------------------
// Sandbox faults

/**
 * An outage: every request answered `503` (nothing applied), or with `throttleEvery`, every `throttleEvery`-th one
 * answered `429` with `Retry-After: <retryAfter>` instead, until `end()` (which removes every fault rule).
 */
export function startOutage(
  sandbox: PartnerCenterSandbox,
  options: { throttleEvery?: number; retryAfter?: string; referralId?: string } = {},
): { end(): void } {
  const where = options.referralId === undefined ? {} : { referralId: options.referralId };
  const every = options.throttleEvery;
  if (every === undefined) {
    sandbox.injectFault({ ...where, times: 1e9, action: { type: 'status', status: 503 } });
    return { end: () => sandbox.clearFaults() };
  }
  // Rules fire in order, each `times` times: 503 × (every−1), then 429 × 1, and again, 5,000 rounds (far more
  // requests than any outage here lasts).
  for (let round = 0; round < 5_000; round++) {
    sandbox.injectFault({ ...where, times: every - 1, action: { type: 'status', status: 503 } });
    sandbox.injectFault({
      ...where,
      times: 1,
      action: { type: 'status', status: 429, retryAfter: options.retryAfter ?? '1' },
    });
  }
  return { end: () => sandbox.clearFaults() };
}

/** Faults the sandbox answered, by answer: `status 503`, `status 429`, `delay 700 ms`, and random kinds. */
export function faultsByAnswer(sandbox: PartnerCenterSandbox): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of sandbox.faultLog) {
    const key = entry.kind === 'rule' ? (entry.detail ?? 'rule') : entry.kind;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------------------
// Events and the model

export interface AsyncEvent {
  id: string;
  referralId: string;
  occurredAtMs: number;
  /** Exactly what is POSTed (every delivery sends these bytes). */
  bodyText: string;
  /** The values the referral holds after the event, per field it names (as stored). */
  values: Partial<Record<Field, Json>>;
  /** Fields whose value no other event carries: how its writes are found in the ledger. */
  unique: Field[];
}

const UNIQUE_INPUTS = ['notes', 'statusReason', 'name', 'externalReferenceId', 'dealValue', 'closingDate'] as const;

/** The sandbox's seeded PRNG, so a plan can be replayed. */
export const prng = mulberry32;

/**
 * `perReferral` events per referral, each with 1–3 writable fields (never a status: every event is applicable, so
 * every one must end `succeeded`), unique values, and a distinct `occurredAt`; returned in a shuffled order (so
 * older events often come after newer ones and per-field ordering decides).
 */
export function planEvents(referralIds: readonly string[], perReferral: number, seed: number): AsyncEvent[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const base = Date.UTC(2026, 10, 1, 8, 0, 0);
  let n = 0;
  const events: AsyncEvent[] = [];
  referralIds.forEach((referralId, r) => {
    for (let j = 0; j < perReferral; j++) {
      const body: JsonRecord = { referralId };
      const values: Partial<Record<Field, Json>> = {};
      const unique: Field[] = [];
      const count = 1 + Math.floor(random() * 3);
      const chosen = new Set<(typeof UNIQUE_INPUTS)[number]>();
      while (chosen.size < count) chosen.add(pick(UNIQUE_INPUTS));
      for (const input of chosen) {
        const k = ++n;
        switch (input) {
          case 'notes':
            body.notes = `async notes #${k} (seed ${seed})`;
            values.notes = body.notes as string;
            unique.push('notes');
            break;
          case 'statusReason':
            body.statusReason = `async reason #${k}`;
            values.statusReason = body.statusReason as string;
            unique.push('statusReason');
            break;
          case 'name':
            body.name = `Async referral #${k}`;
            values.name = body.name as string;
            unique.push('name');
            break;
          case 'externalReferenceId':
            body.externalReferenceId = `crm-async-${k}`;
            values.externalReferenceId = body.externalReferenceId as string;
            unique.push('externalReferenceId');
            break;
          case 'dealValue':
            body.dealValue = 500_000 + k * 11 + 0.5;
            values.dealValue = body.dealValue as number;
            unique.push('dealValue');
            break;
          case 'closingDate': {
            const day = new Date(Date.UTC(2028, 0, 1) + k * 86_400_000).toISOString().slice(0, 10);
            body.closingDate = day;
            values.closingDateTime = `${day}T00:00:00Z`;
            unique.push('closingDateTime');
            break;
          }
        }
      }
      const occurredAtMs = base + r * 1000 + j * 60_000;
      body.occurredAt = new Date(occurredAtMs).toISOString();
      const id = `async-${seed}-${r}-${j}`;
      body.eventId = id;
      events.push({ id, referralId, occurredAtMs, bodyText: JSON.stringify(body), values, unique });
    }
  });
  // Fisher–Yates with the plan's PRNG.
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [events[i], events[j]] = [events[j] as AsyncEvent, events[i] as AsyncEvent];
  }
  return events;
}

/** `count` fresh Active/Accepted referrals (unknown fields included) in the sandbox: ids and snapshots. */
export function setUpReferrals(sandbox: PartnerCenterSandbox, count: number) {
  const referralIds: string[] = [];
  const snapshots = new Map<string, JsonRecord>();
  for (let r = 0; r < count; r++) {
    const referral = makeReferral({
      status: 'Active',
      substatus: 'Accepted',
      acceptedDateTime: '2026-10-02T03:04:05.6789012Z',
      asyncProbe: { nested: { list: [1, 'two', { three: 3 }] } },
    });
    sandbox.putReferral(referral);
    referralIds.push(referral.id);
    const stored = sandbox.getReferral(referral.id);
    if (!stored) throw new Error(`referral ${referral.id} not stored`);
    snapshots.set(referral.id, stored);
  }
  return { referralIds, snapshots };
}

/**
 * The per-field model once every event is applied (in any order): each field holds the value of the event with
 * the latest `occurredAt` that names it (status and substatus ordered as one, docs/ordering.md), or its snapshot
 * value when no event names it.
 */
export function expectedFinal(snapshot: JsonRecord, events: readonly AsyncEvent[]): Record<Field, unknown> {
  const fields = adapterFields(snapshot);
  const newest = new Map<string, number>();
  for (const event of [...events].sort((a, b) => a.occurredAtMs - b.occurredAtMs)) {
    for (const [field, value] of Object.entries(event.values) as Array<[Field, Json]>) {
      const group = groupOf(field);
      if ((newest.get(group) ?? Number.NEGATIVE_INFINITY) <= event.occurredAtMs) {
        newest.set(group, event.occurredAtMs);
        fields[field] = value;
      }
    }
  }
  return fields;
}

export interface LedgerCheck {
  /** Events whose unique values newly appear in more than one stored write. */
  doubled: Array<{ eventId: string; writes: number[] }>;
  /** Referral fields that differ from the model at the end. */
  mismatches: string[];
  /** Stored writes per event (0 when every field was superseded or already there). */
  writesByEvent: Map<string, number>;
  /** The ledger seqs of each event's stored writes. */
  writeSeqsByEvent: Map<string, number[]>;
  /** PUTs the sandbox stored for these referrals. */
  storedWrites: number;
}

/** The sandbox's ledger and final state against the plan: doubled writes, and each referral against the model. */
export function checkLedger(
  sandbox: PartnerCenterSandbox,
  referralIds: readonly string[],
  snapshots: ReadonlyMap<string, JsonRecord>,
  events: readonly AsyncEvent[],
): LedgerCheck {
  const doubled: LedgerCheck['doubled'] = [];
  const mismatches: string[] = [];
  const writesByEvent = new Map<string, number>(events.map((e) => [e.id, 0]));
  const writeSeqsByEvent = new Map<string, number[]>();
  let storedWrites = 0;
  for (const id of referralIds) {
    const snapshot = snapshots.get(id) as JsonRecord;
    const own = events.filter((e) => e.referralId === id);
    const writes = sandbox.appliedWrites(id);
    storedWrites += writes.length;
    const seqs = new Map<string, number[]>();
    let previous = adapterFields(snapshot);
    for (const write of writes) {
      const stored = adapterFields(write.fields);
      for (const event of own) {
        const appears = event.unique.some(
          (field) => enc(stored[field]) === enc(event.values[field]) && enc(previous[field]) !== enc(stored[field]),
        );
        if (appears) seqs.set(event.id, [...(seqs.get(event.id) ?? []), write.seq]);
      }
      previous = stored;
    }
    for (const [eventId, list] of seqs) {
      writesByEvent.set(eventId, list.length);
      writeSeqsByEvent.set(eventId, list);
      if (list.length > 1) doubled.push({ eventId, writes: list });
    }
    const final = adapterFields(sandbox.getReferral(id));
    const expected = expectedFinal(snapshot, own);
    for (const field of FIELDS) {
      if (enc(final[field]) !== enc(expected[field])) {
        mismatches.push(`referral ${id}: ${field} is ${enc(final[field])}, the model says ${enc(expected[field])}`);
      }
    }
    // Nothing the adapter does not write changed (unknown fields included).
    const strip = (doc: JsonRecord | undefined) => {
      const copy = structuredClone(doc ?? {}) as JsonRecord;
      for (const key of [
        'eTag',
        'updatedDateTime',
        'status',
        'substatus',
        'statusReason',
        'name',
        'externalReferenceId',
      ])
        delete copy[key];
      const details = copy.details as JsonRecord | null | undefined;
      if (details) for (const key of ['dealValue', 'currency', 'closingDateTime', 'notes']) delete details[key];
      return JSON.stringify(copy);
    };
    if (strip(sandbox.getReferral(id)) !== strip(snapshot))
      mismatches.push(`referral ${id}: fields it does not write changed`);
  }
  return { doubled, mismatches, writesByEvent, writeSeqsByEvent, storedWrites };
}

/**
 * Whether an applied event with no write of its own is explained by group commit (docs/ordering.md#batches): every
 * field of it was also set by a later event (by `occurredAt`) of the same referral that was applied, so one write of
 * a batch holding both carried only the later value. `applied` says whether an event ended updated or unchanged.
 */
export function overwrittenInBatch(
  event: AsyncEvent,
  events: readonly AsyncEvent[],
  applied: (event: AsyncEvent) => boolean,
): boolean {
  return event.unique.every((field) =>
    events.some(
      (other) =>
        other.referralId === event.referralId &&
        other.occurredAtMs > event.occurredAtMs &&
        other.values[field] !== undefined &&
        applied(other),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Figures

/** Writes test-results/async-<name>.json (docs/reliability.md#asynchronous-delivery) and prints it. */
export function recordFigures(name: string, figures: Record<string, unknown>): void {
  const document = {
    suite: name,
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    ...figures,
  };
  const dir = join(REPO_ROOT, 'test-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `async-${name}.json`), `${JSON.stringify(document, null, 2)}\n`);
  process.stdout.write(`\n[async ${name}] ${JSON.stringify(figures)}\n`);
}

/** At most `max` tasks at once. */
export async function inParallel<T, R>(items: readonly T[], max: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(max, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i] as T);
      }
    }),
  );
  return results;
}
