/**
 * Reliability under faults: 1,000 update events over 50 referrals, with concurrent duplicates, later
 * redeliveries and ids reused for another body, driven through the built app (local host, child process)
 * while the sandbox injects seeded random faults of all six kinds. The sandbox's final state, its ledger of
 * applied writes and every answer are compared with a model of what should have happened; the figures go to
 * test-results/reliability.json for scripts/reliability-report.mjs (docs/reliability.md).
 *
 * Replay a failing run with the seed from the test name:
 *   RELIABILITY_SEED=<seed> npx vitest run test/integration/reliability.test.ts
 * The seed fixes the plan (events, duplicates, redeliveries) and the sandbox's fault draw per request
 * position; which request sits at which position still depends on the interleaving of concurrent requests.
 *
 * How the driver keeps the model exact: the events of one referral are delivered one step after another
 * (a step = one event's deliveries: the first one and, for ~20 %, a concurrent copy; or a later redelivery;
 * or a reused id), each delivery retried like Power Automate (up to 4 more times on 409/429/502/503/504,
 * same id, same body). Different referrals run in parallel, at most IN_FLIGHT requests at a time. So every
 * write the sandbox stores for a referral happens during exactly one step of that referral, and the model
 * can be fed answers in the order the referral saw them.
 *
 * The model, per referral: for every field the adapter writes, the set of values the referral may hold.
 * A final 200 `updated`/`unchanged` sets the event's fields to exactly its values; an event whose every
 * delivery ended retryably (its PUT may or may not have landed) adds its values to the sets (counted as
 * unresolved); `stale` and final 4xx change nothing. `lastApplied` is the newest `occurredAt` of an event
 * answered `updated`/`unchanged`, which is exactly what the app records for ordering.
 *
 * Invariants checked (each violation is collected with the seed, referral, event and values):
 * 1. Zero lost updates: at the end, every adapter-written field of every referral holds a value in its model
 *    set (a single value unless an unresolved event touched it), and an event answered `updated` has
 *    exactly one applied write, made during its step, holding all of its values.
 * 2. Zero double applications. Invariant: every write in `appliedWrites(id)` is stored during one step of
 *    that referral and belongs to that step's event; a step stores at most one write; a step that only
 *    replays, or whose answer is `stale`, `referral_closed` or `idempotency_key_reused`, stores none;
 *    `unchanged` stores one only when an earlier attempt of the same step ended retryably (its PUT landed
 *    and its answer was lost). Independently of steps, on the ledger's values: each event's unique values
 *    (every event but the status-only "Won again" carries at least one value no other event carries)
 *    appear, i.e. become the stored value where the previous stored state held something else, at most
 *    once per event; a reused-id body's values never appear at all. Faults cannot add writes: throttle,
 *    server-error and reset never reach the store; lost-response stores the PUT once and drops its answer
 *    (the app must confirm by re-reading, not resend); concurrent-edit bumps the eTag without touching
 *    adapter fields and is not in the ledger; latency only delays.
 * 3. Zero fields lost: every field the adapter does not write, known or unknown, top-level or nested, equals
 *    the snapshot taken at setup, except eTag, updatedDateTime and customAttributes.externalEditCounter,
 *    which must equal stats().externalEdits[id] (the concurrent writer's own edits survive).
 * 4. Every answer accurate: each final answer is one the model allows at that point (`stale` exactly when
 *    occurredAt < lastApplied, with that lastAppliedOccurredAt; `referral_closed` only when the referral is
 *    or may be Closed and the event changes something; `updated` with `changes` whose `from` the model
 *    allows and whose `to` are the event's values; `unchanged` only when the values may already be held);
 *    after a 200 the event's values are in the sandbox; after a 4xx/stale nothing was written; a replayed
 *    answer (Idempotent-Replayed: true) has the status, body bytes and content type of the event's first
 *    final answer, and an event runs to a final answer only once; a different body under a used id gets
 *    422 idempotency_key_reused; no 500 and no non-retryable 5xx ever; every error is
 *    application/problem+json with type, title, status, detail, code and retryable.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../dev/sandbox/random-faults.js';
import { makeReferral } from '../../dev/sandbox/seed.js';
import {
  type AppliedWrite,
  EXTERNAL_EDIT_COUNTER,
  RANDOM_FAULT_KINDS,
  type SandboxStats,
} from '../../dev/sandbox/server.js';
import { FAST_RETRY_ENV, REPO_ROOT, type Stack, startStack } from '../support/stack.js';

// ---------------------------------------------------------------------------------------------------------
// Parameters

function seedFromEnv(): number {
  const raw = process.env.RELIABILITY_SEED;
  if (raw === undefined || raw === '') return Math.floor(Math.random() * 2 ** 31);
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed)) throw new Error(`RELIABILITY_SEED must be an integer; got ${raw}`);
  return seed;
}

const SEED = seedFromEnv();
const FAULT_RATE = 0.18;
const REFERRALS = 50;
const EVENTS_PER_REFERRAL = 20;
const IN_FLIGHT = 16;
const CALLER_RETRIES = 4;
const CALLER_RETRY_DELAY_MS = 20;
const COPY_SHARE = 0.2;
const REDELIVERY_SHARE = 0.1;
const REUSE_SHARE = 0.03;
/** Events allowed to end with only retryable answers (every delivery, every caller retry): 0.5 %. */
const MAX_UNRESOLVED_EVENTS = 5;
const RESULTS_FILE = join(REPO_ROOT, 'test-results', 'reliability.json');
/**
 * The app's own retries are turned down (defaults: 4 and 4) so that its answers to callers are often
 * retryable: callers then retry, and a retry after a PUT whose answer was lost must come back `unchanged`.
 */
const APP_SETTINGS = {
  UPSTREAM_BUDGET_MS: '8000',
  UPSTREAM_MAX_RETRIES: '1',
  CONCURRENCY_MAX_RETRIES: '1',
};

/** Statuses a caller (Power Automate) retries. */
const RETRYABLE = new Set([409, 429, 502, 503, 504]);
/** The retryable codes the contract allows, by status. */
const RETRYABLE_CODES: Record<number, readonly string[]> = {
  409: ['in_progress', 'conflict'],
  502: ['upstream_error'],
  503: ['upstream_unavailable', 'idempotency_store_unavailable'],
  504: ['upstream_timeout'],
};

// ---------------------------------------------------------------------------------------------------------
// Fields the adapter writes, as the sandbox stores them. Written out here on purpose rather than taken from
// shared/referral.ts WRITABLE_PATHS: the model must not inherit a mistake of the code it checks.

const FIELDS = [
  'status',
  'substatus',
  'statusReason',
  'name',
  'externalReferenceId',
  'dealValue',
  'currency',
  'closingDateTime',
  'notes',
] as const;
type Field = (typeof FIELDS)[number];

const PATHS: Record<Field, readonly string[]> = {
  status: ['status'],
  substatus: ['substatus'],
  statusReason: ['statusReason'],
  name: ['name'],
  externalReferenceId: ['externalReferenceId'],
  dealValue: ['details', 'dealValue'],
  currency: ['details', 'currency'],
  closingDateTime: ['details', 'closingDateTime'],
  notes: ['details', 'notes'],
};
const POINTERS = new Map<string, Field>(FIELDS.map((field) => [`/${PATHS[field].join('/')}`, field]));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonRecord = Record<string, unknown>;
type Values = Partial<Record<Field, Json>>;

const ABSENT = '<absent>';
/** A field value as a comparable key; absent and JSON null stay distinct. */
const enc = (value: unknown): string => (value === undefined ? ABSENT : JSON.stringify(value));
const show = (value: unknown): string => (value === undefined ? '(absent)' : JSON.stringify(value));

function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readPath(doc: unknown, path: readonly string[]): unknown {
  let node = doc;
  for (const key of path) {
    if (!isRecord(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

/** The adapter-written fields of a stored document (or of a ledger entry's `fields`). */
function adapterFields(doc: unknown): Record<Field, unknown> {
  const fields = {} as Record<Field, unknown>;
  for (const field of FIELDS) fields[field] = readPath(doc, PATHS[field]);
  return fields;
}

function sameFields(a: Record<Field, unknown>, b: Record<Field, unknown>): boolean {
  return FIELDS.every((field) => enc(a[field]) === enc(b[field]));
}

function fieldsDiff(a: Record<Field, unknown>, b: Record<Field, unknown>): Field[] {
  return FIELDS.filter((field) => enc(a[field]) !== enc(b[field]));
}

// ---------------------------------------------------------------------------------------------------------
// The plan

type EventKind = 'change' | 'activate' | 'close' | 'won-again' | 'after-close' | 'older';

interface PlannedEvent {
  id: string;
  referralId: string;
  kind: EventKind;
  /** occurredAt as an instant. */
  occurredAtMs: number;
  /** The request body, serialized once: every delivery of the event sends these exact bytes. */
  bodyText: string;
  /** What the sandbox must hold after the event, per field it names (normalized as the contract says). */
  values: Values;
  /** Fields whose value no other event (or reused body) of the run carries. */
  unique: Field[];
}

type Step =
  | { type: 'deliver'; event: PlannedEvent; copy: boolean }
  | { type: 'redeliver'; event: PlannedEvent }
  | { type: 'reuse'; event: PlannedEvent; altered: PlannedEvent };

const UNIQUE_FIELDS = ['notes', 'statusReason', 'name', 'externalReferenceId', 'dealValue', 'closingDate'] as const;
type UniqueInput = (typeof UNIQUE_FIELDS)[number];
const CURRENCIES = ['EUR', 'USD', 'GBP', 'CAD', 'JPY', 'CHF', 'AUD', 'SEK'] as const;
const T0 = Date.UTC(2026, 10, 1, 8, 0, 0);

function buildPlan(seed: number, referralIds: readonly string[], startsNew: (index: number) => boolean) {
  const random = mulberry32(seed ^ 0x5eed5eed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chance = (p: number) => random() < p;
  let unique = 0;
  let reuses = 0;

  /** One unique value: the request field, its value as sent, the stored field and value. */
  const uniqueValue = (input: UniqueInput): { sent: Json; field: Field; stored: Json } => {
    const n = ++unique;
    switch (input) {
      case 'notes': {
        const text = chance(0.2) ? `Notes #${n}: Zürich — 東京 ✓ "quoted" \\ back` : `notes #${n}`;
        return { sent: text, field: 'notes', stored: text };
      }
      case 'statusReason':
        return { sent: `reason #${n}`, field: 'statusReason', stored: `reason #${n}` };
      case 'name':
        return { sent: `Referral name #${n}`, field: 'name', stored: `Referral name #${n}` };
      case 'externalReferenceId':
        return { sent: `crm-${n}`, field: 'externalReferenceId', stored: `crm-${n}` };
      case 'dealValue': {
        const value = 1000 + n * 7 + 0.25;
        return { sent: value, field: 'dealValue', stored: value };
      }
      case 'closingDate': {
        const day = new Date(Date.UTC(2027, 0, 1) + n * 86_400_000).toISOString().slice(0, 10);
        // Either a date or a date-time with an offset: both normalize to midnight UTC of that day.
        const sent = chance(0.5) ? day : `${day}T05:30:00+05:30`;
        return { sent, field: 'closingDateTime', stored: `${day}T00:00:00Z` };
      }
    }
  };

  const occurredAtText = (ms: number): string =>
    chance(0.25) ? new Date(ms + 3_600_000).toISOString().replace('Z', '+01:00') : new Date(ms).toISOString();

  const makeEvent = (
    referralId: string,
    kind: EventKind,
    occurredAtMs: number,
    id: string,
    build: (body: JsonRecord, values: Values, uniqueFields: Field[]) => void,
  ): PlannedEvent => {
    const body: JsonRecord = { referralId, occurredAt: occurredAtText(occurredAtMs) };
    const values: Values = {};
    const uniqueFields: Field[] = [];
    build(body, values, uniqueFields);
    return { id, referralId, kind, occurredAtMs, bodyText: JSON.stringify(body), values, unique: uniqueFields };
  };

  /** `count` writable fields (besides any status), the first one unique, currency possibly among the others. */
  const addFields = (body: JsonRecord, values: Values, uniqueFields: Field[], count: number) => {
    const pool: Array<UniqueInput | 'currency'> = [...UNIQUE_FIELDS, 'currency'];
    const first = pick(UNIQUE_FIELDS);
    const chosen: Array<UniqueInput | 'currency'> = [first];
    while (chosen.length < count) {
      const next = pick(pool);
      if (!chosen.includes(next)) chosen.push(next);
    }
    for (const input of chosen) {
      if (input === 'currency') {
        const code = pick(CURRENCIES);
        body.currency = chance(0.3) ? code.toLowerCase() : code;
        values.currency = code;
      } else {
        const { sent, field, stored } = uniqueValue(input);
        body[input] = sent;
        values[field] = stored;
        uniqueFields.push(field);
      }
    }
  };

  const chains: Step[][] = [];
  const events: PlannedEvent[] = [];
  referralIds.forEach((referralId, r) => {
    const isNew = startsNew(r);
    const closes = r % 5 === 0;
    const activateAt = isNew ? 1 + Math.floor(random() * 5) : -1;
    let olderAt = 3 + Math.floor(random() * 12);
    if (olderAt === activateAt) olderAt += 1;
    const planned: PlannedEvent[] = [];
    for (let j = 0; j < EVENTS_PER_REFERRAL; j++) {
      const id = `rel-${SEED}-${r}-${j}`;
      const at = T0 + r * 1000 + j * 60_000;
      let kind: EventKind = 'change';
      if (j === activateAt) kind = 'activate';
      else if (j === olderAt) kind = 'older';
      if (closes && j === EVENTS_PER_REFERRAL - 4) kind = 'close';
      else if (closes && j === EVENTS_PER_REFERRAL - 3) kind = 'won-again';
      else if (closes && j > EVENTS_PER_REFERRAL - 3) kind = 'after-close';
      // An older event occurred 30 s before the event two places earlier: older than both events before it.
      const occurredAtMs = kind === 'older' ? at - 2 * 60_000 - 30_000 : at;
      planned.push(
        makeEvent(referralId, kind, occurredAtMs, id, (body, values, uniqueFields) => {
          switch (kind) {
            case 'activate':
              body.status = pick(['Active', 'active', 'ACTIVE']);
              values.status = 'Active';
              values.substatus = 'Accepted';
              addFields(body, values, uniqueFields, 1 + Math.floor(random() * 2));
              return;
            case 'close': {
              body.substatus = pick(['Won', 'won']);
              values.status = 'Closed';
              values.substatus = 'Won';
              const deal = uniqueValue('dealValue');
              body.dealValue = deal.sent;
              values.dealValue = deal.stored;
              uniqueFields.push('dealValue');
              if (chance(0.5)) {
                const closing = uniqueValue('closingDate');
                body.closingDate = closing.sent;
                values.closingDateTime = closing.stored;
                uniqueFields.push('closingDateTime');
              }
              return;
            }
            case 'won-again':
              // A new event that asks for what the referral already holds: a success even though it is Closed.
              body.substatus = 'Won';
              values.status = 'Closed';
              values.substatus = 'Won';
              return;
            default:
              addFields(body, values, uniqueFields, 1 + Math.floor(random() * 3));
          }
        }),
      );
    }
    events.push(...planned);

    // Steps, positioned: event j at 10·j; a redelivery or reuse of event j 1–4 events later (or at the end).
    const positioned: Array<{ at: number; step: Step }> = [];
    planned.forEach((event, j) => {
      positioned.push({ at: j * 10, step: { type: 'deliver', event, copy: chance(COPY_SHARE) } });
      if (chance(REDELIVERY_SHARE)) {
        positioned.push({ at: (j + 1 + Math.floor(random() * 4)) * 10 + 1, step: { type: 'redeliver', event } });
      }
      if (chance(REUSE_SHARE)) {
        reuses++;
        const notes = `reused body #${reuses} of ${event.id}`;
        const original = JSON.parse(event.bodyText) as JsonRecord;
        const altered: PlannedEvent = {
          ...event,
          bodyText: JSON.stringify({ ...original, notes }),
          values: { ...event.values, notes },
          unique: ['notes'],
        };
        positioned.push({ at: (j + 1 + Math.floor(random() * 4)) * 10 + 2, step: { type: 'reuse', event, altered } });
      }
    });
    positioned.sort((a, b) => a.at - b.at);
    chains.push(positioned.map((entry) => entry.step));
  });
  return { chains, events };
}

// ---------------------------------------------------------------------------------------------------------
// Deliveries

interface Attempt {
  status: number;
  text: string;
  contentType: string;
  replayed: boolean;
  body: JsonRecord | undefined;
}

type DeliveryRole = 'first' | 'copy' | 'redelivery' | 'reuse';

interface Delivery {
  role: DeliveryRole;
  attempts: Attempt[];
}

/** At most `max` tasks at a time; a finished task hands its slot to the next waiter. */
class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The suite

let stack: Stack;
let startupMs = 0;
beforeAll(async () => {
  const started = performance.now();
  stack = await startStack(APP_SETTINGS);
  startupMs = performance.now() - started;
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

interface Track {
  event: PlannedEvent;
  /** The event's first final answer that was not a replay. */
  original?: Attempt;
  /** Retryable answers that may have followed a landed write (not `in_progress`). */
  unconfirmed: number;
  /** Applied writes stored during the event's steps. */
  writes: number;
}

interface RefModel {
  id: string;
  possible: Record<Field, Set<string>>;
  /** Which event last set each field (for messages). */
  setBy: Partial<Record<Field, string>>;
  lastApplied: number | undefined;
}

type Category =
  | 'lost'
  | 'doubled'
  | 'fieldsLost'
  | 'responses5xx'
  | 'wrongAnswer'
  | 'replayMismatch'
  | 'problemJson'
  | 'noAnswer'
  | 'unresolved';

describe('reliability under random upstream faults', () => {
  it(`1,000 events over 50 referrals with duplicates and redeliveries: nothing lost, nothing doubled, every answer right (seed ${SEED})`, async () => {
    const { sandbox } = stack;
    sandbox.reset();
    const runStarted = performance.now();

    // --- Setup: 50 fresh referrals, half New/Pending, half Active/Accepted, with unknown fields.
    const referralIds: string[] = [];
    const snapshots = new Map<string, JsonRecord>();
    for (let r = 0; r < REFERRALS; r++) {
      const isNew = r % 2 === 0;
      const referral = makeReferral(
        isNew ? {} : { status: 'Active', substatus: 'Accepted', acceptedDateTime: '2026-10-02T03:04:05.6789012Z' },
      );
      const details = isRecord(referral.details) ? referral.details : {};
      const attributes = isRecord(referral.customAttributes) ? referral.customAttributes : {};
      referral.details = {
        ...details,
        partnerExtension: { scoring: { model: 'v2', weights: [0.25, 0.5, 0.125], flags: { hot: r % 3 === 0 } } },
      };
      referral.customAttributes = {
        ...attributes,
        reliabilityProbe: { batch: SEED, nested: { deeper: { list: [{ k: 'v', n: 1.5e-7 }, null, true] } } },
      };
      referral.unknownTopLevel = { since: '2026-10-10T10:10:10.1234567Z', amounts: [1, 2.5, 1e21], empty: {} };
      sandbox.putReferral(referral);
      referralIds.push(referral.id);
      const stored = sandbox.getReferral(referral.id);
      if (stored === undefined) throw new Error(`setup: referral ${referral.id} was not stored`);
      snapshots.set(referral.id, stored);
    }

    const { chains, events } = buildPlan(SEED, referralIds, (r) => r % 2 === 0);
    expect(events).toHaveLength(REFERRALS * EVENTS_PER_REFERRAL);

    // --- The model, one per referral, from the snapshots.
    const models = new Map<string, RefModel>();
    for (const id of referralIds) {
      const fields = adapterFields(snapshots.get(id));
      const possible = {} as Record<Field, Set<string>>;
      for (const field of FIELDS) possible[field] = new Set([enc(fields[field])]);
      models.set(id, { id, possible, setBy: {}, lastApplied: undefined });
    }
    const tracks = new Map<string, Track>(events.map((event) => [event.id, { event, unconfirmed: 0, writes: 0 }]));

    const violations: string[] = [];
    const counts: Record<Category, number> = {
      lost: 0,
      doubled: 0,
      fieldsLost: 0,
      responses5xx: 0,
      wrongAnswer: 0,
      replayMismatch: 0,
      problemJson: 0,
      noAnswer: 0,
      unresolved: 0,
    };
    const violate = (category: Category, message: string) => {
      counts[category]++;
      violations.push(`[${category}] ${message}`);
    };

    const figures = {
      deliveries: { first: 0, copy: 0, redelivery: 0, reuse: 0 } as Record<DeliveryRole, number>,
      reusesSkipped: 0,
      httpRequests: 0,
      callerRetries: 0,
      deliveriesFailedAfterRetries: 0,
      answersByStatus: {} as Record<string, number>,
      answersByOutcome: {} as Record<string, number>,
      replayed: 0,
      retryable5xxAnswers: 0,
      unresolvedEvents: 0,
    };
    const bump = (table: Record<string, number>, key: string) => {
      table[key] = (table[key] ?? 0) + 1;
    };

    // --- Sending.
    const limiter = new Limiter(IN_FLIGHT);
    const post = (eventId: string, bodyText: string): Promise<Attempt> =>
      limiter.run(async () => {
        figures.httpRequests++;
        try {
          const response = await fetch(`${stack.hostUrl}/api/referral-updates`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'webhook-id': eventId },
            body: bodyText,
          });
          const text = await response.text();
          let body: JsonRecord | undefined;
          try {
            const parsed: unknown = JSON.parse(text);
            if (isRecord(parsed)) body = parsed;
          } catch {
            body = undefined;
          }
          return {
            status: response.status,
            text,
            contentType: response.headers.get('content-type') ?? '',
            replayed: response.headers.get('idempotent-replayed') === 'true',
            body,
          };
        } catch (error) {
          return { status: 0, text: String(error), contentType: '', replayed: false, body: undefined };
        }
      });

    /** One caller: the first attempt and up to CALLER_RETRIES more on a retryable answer. */
    const deliver = async (event: PlannedEvent, role: DeliveryRole, bodyText: string): Promise<Delivery> => {
      figures.deliveries[role]++;
      const attempts: Attempt[] = [];
      for (let attempt = 0; attempt <= CALLER_RETRIES; attempt++) {
        if (attempt > 0) {
          figures.callerRetries++;
          await sleep(CALLER_RETRY_DELAY_MS * attempt);
        }
        const answer = await post(event.id, bodyText);
        attempts.push(answer);
        checkAttempt(event, role, answer);
        if (answer.status !== 0 && !RETRYABLE.has(answer.status)) break;
      }
      const last = attempts.at(-1);
      if (last !== undefined && (last.status === 0 || RETRYABLE.has(last.status))) {
        figures.deliveriesFailedAfterRetries++;
      }
      return { role, attempts };
    };

    /** Checks every answer on its own: status, media type, problem document, replay header. */
    const checkAttempt = (event: PlannedEvent, role: DeliveryRole, answer: Attempt) => {
      const where = `event ${event.id} (${event.kind}, ${role}) on ${event.referralId}`;
      bump(figures.answersByStatus, String(answer.status));
      if (answer.replayed) figures.replayed++;
      if (answer.status === 0) {
        violate('noAnswer', `${where}: the host did not answer: ${answer.text}`);
        return;
      }
      const body = answer.body;
      if (answer.status >= 500) {
        const allowed = RETRYABLE_CODES[answer.status] ?? [];
        if (allowed.includes(String(body?.code)) && body?.retryable === true) figures.retryable5xxAnswers++;
        else violate('responses5xx', `${where}: ${answer.status} ${answer.text}`);
      }
      if (answer.status === 200) {
        if (!answer.contentType.startsWith('application/json')) {
          violate('wrongAnswer', `${where}: 200 with content-type ${answer.contentType}`);
        }
        if (body === undefined || body.referralId !== event.referralId || body.eventId !== event.id) {
          violate('wrongAnswer', `${where}: 200 without the referral id and event id: ${answer.text}`);
        } else {
          bump(figures.answersByOutcome, String(body.outcome));
        }
      } else if (answer.status >= 400) {
        if (!answer.contentType.startsWith('application/problem+json')) {
          violate('problemJson', `${where}: ${answer.status} with content-type "${answer.contentType}"`);
        }
        const complete =
          body !== undefined &&
          typeof body.type === 'string' &&
          typeof body.title === 'string' &&
          body.status === answer.status &&
          typeof body.detail === 'string' &&
          typeof body.code === 'string' &&
          typeof body.retryable === 'boolean';
        if (!complete) {
          violate('problemJson', `${where}: ${answer.status} is not a complete problem document: ${answer.text}`);
        } else {
          bump(figures.answersByOutcome, String(body.code));
          if (body.retryable !== RETRYABLE.has(answer.status)) {
            violate('wrongAnswer', `${where}: ${answer.status} ${String(body.code)} says retryable=${body.retryable}`);
          }
          if (answer.status === 409 && !(RETRYABLE_CODES[409] ?? []).includes(String(body.code))) {
            violate('wrongAnswer', `${where}: 409 with code ${String(body.code)}`);
          }
        }
      }
      if (![200, 409, 422, 502, 503, 504].includes(answer.status)) {
        violate('wrongAnswer', `${where}: status ${answer.status} has no place in this run: ${answer.text}`);
      }
      if (answer.replayed && (RETRYABLE.has(answer.status) || answer.status >= 500)) {
        violate('wrongAnswer', `${where}: a retryable answer was replayed: ${answer.status} ${answer.text}`);
      }
    };

    const isFinal = (answer: Attempt) => answer.status !== 0 && !RETRYABLE.has(answer.status);
    /** A retryable answer after which the event's PUT may have landed. */
    const mayHaveWritten = (answer: Attempt) =>
      answer.status === 0 || (RETRYABLE.has(answer.status) && answer.body?.code !== 'in_progress');

    // --- The model's transitions.
    const union = (model: RefModel, event: PlannedEvent) => {
      for (const [field, value] of Object.entries(event.values) as Array<[Field, Json]>) {
        model.possible[field].add(enc(value));
      }
    };
    const holds = (model: RefModel, field: Field, value: unknown) => model.possible[field].has(enc(value));
    const holdsFrom = (model: RefModel, field: Field, from: unknown) =>
      holds(model, field, from) || (from === null && model.possible[field].has(ABSENT));
    const describeModel = (model: RefModel, field: Field) =>
      `{${[...model.possible[field]].join(' | ')}}${model.setBy[field] ? ` (last set by ${model.setBy[field]})` : ''}`;

    /** Checks a fresh (not replayed) final answer against the model before the event, then moves the model. */
    const checkFreshAnswer = (model: RefModel, event: PlannedEvent, answer: Attempt, where: string) => {
      const body = answer.body ?? {};
      const fields = Object.entries(event.values) as Array<[Field, Json]>;
      const expectStale = model.lastApplied !== undefined && event.occurredAtMs < model.lastApplied;
      if (answer.status === 200 && body.outcome === 'stale') {
        if (!expectStale) {
          violate(
            'wrongAnswer',
            `${where}: stale, but no newer event was applied (last applied ${model.lastApplied === undefined ? 'none' : new Date(model.lastApplied).toISOString()}, event ${new Date(event.occurredAtMs).toISOString()}): ${answer.text}`,
          );
        } else if (
          Date.parse(String(body.lastAppliedOccurredAt)) !== model.lastApplied ||
          !isDeepStrictEqual(body.changes, []) ||
          body.status !== null ||
          body.eTag !== null
        ) {
          violate('wrongAnswer', `${where}: stale answer with wrong details: ${answer.text}`);
        }
        return;
      }
      if (expectStale) {
        violate(
          'wrongAnswer',
          `${where}: expected stale (occurredAt ${new Date(event.occurredAtMs).toISOString()} < last applied ${new Date(model.lastApplied ?? 0).toISOString()}), got ${answer.status} ${answer.text}`,
        );
        return;
      }
      const mayChange = fields.some(([field, value]) => model.possible[field].size > 1 || !holds(model, field, value));
      const mustChange = fields.some(([field, value]) => !holds(model, field, value));
      const canBeClosed = model.possible.status.has(enc('Closed'));
      const mustBeClosed = canBeClosed && model.possible.status.size === 1;
      const code = body.code;
      if (answer.status === 422 && code === 'referral_closed') {
        const current = isRecord(body.current) ? body.current : {};
        if (!canBeClosed || !mayChange || current.status !== 'Closed') {
          violate(
            'wrongAnswer',
            `${where}: referral_closed, but the model has status ${describeModel(model, 'status')} and the event ${mayChange ? 'changes' : 'changes nothing'}: ${answer.text}`,
          );
          return;
        }
        model.possible.status = new Set([enc('Closed')]);
        if (holds(model, 'substatus', current.substatus)) model.possible.substatus = new Set([enc(current.substatus)]);
        else violate('wrongAnswer', `${where}: referral_closed names substatus ${show(current.substatus)}`);
        return;
      }
      if (answer.status !== 200 || (body.outcome !== 'updated' && body.outcome !== 'unchanged')) {
        violate('wrongAnswer', `${where}: unexpected final answer ${answer.status} ${answer.text}`);
        return;
      }
      const changes = Array.isArray(body.changes) ? body.changes : [];
      if (body.outcome === 'unchanged') {
        if (mustChange || changes.length > 0) {
          const differing = fields.filter(([field, value]) => !holds(model, field, value)).map(([f]) => f);
          violate(
            'wrongAnswer',
            `${where}: unchanged, but the model says ${differing.map((f) => `${f} ${describeModel(model, f)}`).join(', ')} differ: ${answer.text}`,
          );
        }
      } else {
        if (!mayChange || mustBeClosed) {
          violate(
            'wrongAnswer',
            `${where}: updated, but the model says ${mustBeClosed ? 'the referral is Closed' : 'nothing changes'}: ${answer.text}`,
          );
        }
        const seen = new Set<Field>();
        for (const change of changes) {
          const field = isRecord(change) ? POINTERS.get(String(change.path)) : undefined;
          if (!isRecord(change) || field === undefined || !(field in event.values) || seen.has(field)) {
            violate('wrongAnswer', `${where}: change ${JSON.stringify(change)} is not one of the event's fields`);
            continue;
          }
          seen.add(field);
          if (enc(change.to) !== enc(event.values[field])) {
            violate(
              'wrongAnswer',
              `${where}: change ${JSON.stringify(change)} but the event asks for ${show(event.values[field])}`,
            );
          }
          if (!holdsFrom(model, field, change.from) || enc(change.from) === enc(change.to)) {
            violate(
              'wrongAnswer',
              `${where}: change ${JSON.stringify(change)} but the model has ${describeModel(model, field)}`,
            );
          }
        }
        for (const [field, value] of fields) {
          if (!seen.has(field) && !holds(model, field, value)) {
            violate(
              'wrongAnswer',
              `${where}: no change reported for ${field}, but the model has ${describeModel(model, field)} and the event asks for ${show(value)}`,
            );
          }
        }
        if (changes.length === 0) violate('wrongAnswer', `${where}: updated with no changes`);
      }
      // Apply: the event's values are now certain; the answer tells the resulting status.
      for (const [field, value] of fields) {
        model.possible[field] = new Set([enc(value)]);
        model.setBy[field] = event.id;
      }
      for (const field of ['status', 'substatus'] as const) {
        if (holds(model, field, body[field])) model.possible[field] = new Set([enc(body[field])]);
        else
          violate(
            'wrongAnswer',
            `${where}: answer says ${field} ${show(body[field])}, model has ${describeModel(model, field)}`,
          );
      }
      model.lastApplied = Math.max(model.lastApplied ?? Number.NEGATIVE_INFINITY, event.occurredAtMs);
    };

    /** A write stored during a step must be the step's event, whole, and nothing else. */
    const checkWriteBelongs = (
      event: PlannedEvent,
      write: AppliedWrite,
      before: Record<Field, unknown>,
      where: string,
    ) => {
      const stored = adapterFields(write.fields);
      const missing = (Object.entries(event.values) as Array<[Field, Json]>).filter(
        ([field, value]) => enc(stored[field]) !== enc(value),
      );
      const foreign = fieldsDiff(before, stored).filter((field) => !(field in event.values));
      if (missing.length > 0 || foreign.length > 0) {
        violate(
          'lost',
          `${where}: write seq ${write.seq} (fault ${write.fault ?? 'none'}) is not this event's change: missing ${missing.map(([f, v]) => `${f}=${show(v)} (stored ${show(stored[f])})`).join(', ') || 'nothing'}; other fields changed: ${foreign.map((f) => `${f} ${show(before[f])} → ${show(stored[f])}`).join(', ') || 'none'}`,
        );
      }
    };

    const runStep = async (step: Step) => {
      const event = step.event;
      const referralId = event.referralId;
      const model = models.get(referralId);
      const track = tracks.get(event.id);
      if (model === undefined || track === undefined) throw new Error(`no model for ${event.id}`);
      const beforeDoc = sandbox.getReferral(referralId);
      const before = adapterFields(beforeDoc);
      const writesBefore = sandbox.appliedWrites(referralId).length;

      let deliveries: Delivery[];
      if (step.type === 'reuse') {
        // Only an id whose answer is stored is "used"; a retryable answer frees the id (documented).
        if (track.original === undefined) {
          figures.reusesSkipped++;
          return;
        }
        deliveries = [await deliver(event, 'reuse', step.altered.bodyText)];
      } else if (step.type === 'redeliver') {
        deliveries = [await deliver(event, 'redelivery', event.bodyText)];
      } else {
        deliveries = await Promise.all([
          deliver(event, 'first', event.bodyText),
          ...(step.copy ? [deliver(event, 'copy', event.bodyText)] : []),
        ]);
      }

      const afterDoc = sandbox.getReferral(referralId);
      const after = adapterFields(afterDoc);
      const writes = sandbox.appliedWrites(referralId).slice(writesBefore);
      const where = `seed ${SEED}, referral ${referralId}, event ${event.id} (${event.kind}, ${step.type}${step.type === 'deliver' && step.copy ? ' + concurrent copy' : ''})`;
      const attempts = deliveries.flatMap((delivery) => delivery.attempts);
      track.writes += writes.length;
      if (writes.length > 1) {
        violate(
          'doubled',
          `${where}: ${writes.length} writes stored in one step: ${writes.map((w) => `seq ${w.seq} (fault ${w.fault ?? 'none'})`).join(', ')}`,
        );
      }

      if (step.type === 'reuse') {
        for (const answer of attempts) {
          if (answer.status !== 422 || answer.body?.code !== 'idempotency_key_reused' || answer.replayed) {
            violate('wrongAnswer', `${where}: a different body under a used id got ${answer.status} ${answer.text}`);
          }
        }
        if (writes.length > 0 || !sameFields(before, after)) {
          violate('wrongAnswer', `${where}: the reused id's body was written (${writes.length} writes)`);
        }
        return;
      }

      const fresh = attempts.filter((answer) => !answer.replayed && isFinal(answer));
      const hadOriginal = track.original !== undefined;
      if (fresh.length > (hadOriginal ? 0 : 1)) {
        violate(
          'doubled',
          `${where}: the event ran to a final answer ${fresh.length + (hadOriginal ? 1 : 0)} times: ${[track.original, ...fresh].flatMap((a) => (a ? [`${a.status} ${a.text}`] : [])).join(' / ')}`,
        );
      }
      const first = fresh[0];
      if (!hadOriginal && first !== undefined) track.original = first;
      for (const answer of attempts.filter((a) => a.replayed)) {
        const original = track.original;
        if (original === undefined) {
          violate('replayMismatch', `${where}: a replay of an answer never given: ${answer.status} ${answer.text}`);
        } else if (
          answer.status !== original.status ||
          answer.text !== original.text ||
          answer.contentType !== original.contentType
        ) {
          violate(
            'replayMismatch',
            `${where}: replay differs from the first answer:\n  first:  ${original.status} ${original.contentType} ${original.text}\n  replay: ${answer.status} ${answer.contentType} ${answer.text}`,
          );
        }
      }
      const unconfirmed = attempts.filter(mayHaveWritten).length;
      track.unconfirmed += unconfirmed;

      if (hadOriginal) {
        // The event's answer was stored before this step: only replays, nothing read or written.
        if (writes.length > 0) {
          violate('doubled', `${where}: a redelivery of an answered event wrote again (seq ${writes[0]?.seq})`);
        }
        return;
      }
      if (first === undefined) {
        // Every delivery ended retryably: the PUT may or may not have landed.
        union(model, event);
        for (const write of writes) checkWriteBelongs(event, write, before, where);
        return;
      }
      const outcome = first.body?.outcome;
      // An earlier attempt of this step may have stored the event (its answer lost): then `unchanged` is right.
      if (unconfirmed > 0 && first.status === 200 && outcome !== 'stale') union(model, event);
      checkFreshAnswer(model, event, first, where);

      if (first.status === 200 && outcome === 'updated') {
        const write = writes[0];
        if (writes.length !== 1 || write === undefined) {
          violate('lost', `${where}: answered updated, but ${writes.length} writes were stored: ${first.text}`);
        } else {
          checkWriteBelongs(event, write, before, where);
          if (first.body?.eTag !== write.eTag) {
            violate(
              'wrongAnswer',
              `${where}: updated with eTag ${show(first.body?.eTag)}, the write stored ${write.eTag}`,
            );
          }
        }
      } else if (first.status === 200 && outcome === 'unchanged') {
        if (writes.length > 0 && unconfirmed === 0) {
          violate(
            'wrongAnswer',
            `${where}: answered unchanged, but its write (seq ${writes[0]?.seq}) was stored in this step and no attempt lost an answer`,
          );
        }
        for (const write of writes) checkWriteBelongs(event, write, before, where);
      } else if (writes.length > 0 || !sameFields(before, after)) {
        violate(
          'wrongAnswer',
          `${where}: answered ${first.status} ${String(outcome ?? first.body?.code)} but wrote: ${fieldsDiff(
            before,
            after,
          )
            .map((f) => `${f} ${show(before[f])} → ${show(after[f])}`)
            .join(', ')}`,
        );
      }
      if (first.status === 200 && (outcome === 'updated' || outcome === 'unchanged')) {
        // "A 200 means the values are in the sandbox": checked right after the step, before anything else
        // can touch this referral.
        const absent = (Object.entries(event.values) as Array<[Field, Json]>).filter(
          ([field, value]) => enc(after[field]) !== enc(value),
        );
        if (absent.length > 0) {
          violate(
            'lost',
            `${where}: answered ${outcome}, but the sandbox holds ${absent.map(([f, v]) => `${f}=${show(after[f])} instead of ${show(v)}`).join(', ')}`,
          );
        }
      }
    };

    // --- Drive: referrals in parallel, the steps of one referral one after another.
    sandbox.setRandomFaults({ rate: FAULT_RATE, seed: SEED, kinds: RANDOM_FAULT_KINDS });
    const driverStarted = performance.now();
    await Promise.all(
      chains.map(async (chain) => {
        for (const step of chain) await runStep(step);
      }),
    );
    const driverMs = performance.now() - driverStarted;
    sandbox.setRandomFaults(undefined);
    const stats: SandboxStats = sandbox.stats();

    // --- Final state against the model and the snapshot.
    let unresolvedFields = 0;
    for (const id of referralIds) {
      const model = models.get(id);
      const snapshot = snapshots.get(id);
      const final = sandbox.getReferral(id);
      if (model === undefined || snapshot === undefined || final === undefined) {
        violate('fieldsLost', `seed ${SEED}: referral ${id} is gone`);
        continue;
      }
      const fields = adapterFields(final);
      for (const field of FIELDS) {
        if (model.possible[field].size > 1) unresolvedFields++;
        if (!holds(model, field, fields[field])) {
          violate(
            'lost',
            `seed ${SEED}, referral ${id}: ${field} is ${show(fields[field])}, the model has ${describeModel(model, field)}`,
          );
        }
      }
      // Fields the adapter does not write: exactly the snapshot's.
      const edits = stats.externalEdits[id] ?? 0;
      const attributes = isRecord(final.customAttributes) ? final.customAttributes : {};
      const counter = attributes[EXTERNAL_EDIT_COUNTER];
      if ((counter ?? 0) !== edits) {
        violate(
          'fieldsLost',
          `seed ${SEED}, referral ${id}: customAttributes.${EXTERNAL_EDIT_COUNTER} is ${show(counter)}, the concurrent writer made ${edits} edits`,
        );
      }
      const lost = differingPaths(withoutAdapterFields(snapshot), withoutAdapterFields(final));
      if (lost.length > 0) {
        violate('fieldsLost', `seed ${SEED}, referral ${id}: fields differ from the snapshot: ${lost.join(', ')}`);
      }

      // The ledger, on values: each event's unique values appear at most once; a reused body's never.
      const writes = sandbox.appliedWrites(id);
      const last = writes.at(-1);
      if (!sameFields(adapterFields(last === undefined ? snapshot : last.fields), fields)) {
        violate('lost', `seed ${SEED}, referral ${id}: the final state is not the last applied write`);
      }
      const ownEvents = events.filter((event) => event.referralId === id && event.unique.length > 0);
      const appearances = new Map<string, number[]>();
      let previous = adapterFields(snapshot);
      for (const write of writes) {
        const stored = adapterFields(write.fields);
        for (const event of ownEvents) {
          const appears = event.unique.some(
            (field) => enc(stored[field]) === enc(event.values[field]) && enc(previous[field]) !== enc(stored[field]),
          );
          if (appears) appearances.set(event.id, [...(appearances.get(event.id) ?? []), write.seq]);
        }
        previous = stored;
      }
      for (const [eventId, seqs] of appearances) {
        if (seqs.length > 1) {
          violate(
            'doubled',
            `seed ${SEED}, referral ${id}: event ${eventId} was stored ${seqs.length} times (writes ${seqs.join(', ')})`,
          );
        }
        const track = tracks.get(eventId);
        const answer = track?.original?.body;
        const refused =
          track?.original !== undefined &&
          !(track.original.status === 200 && (answer?.outcome === 'updated' || answer?.outcome === 'unchanged'));
        if (track !== undefined && refused && track.unconfirmed === 0) {
          violate(
            'wrongAnswer',
            `seed ${SEED}, referral ${id}: event ${eventId} answered ${track.original?.status} ${track.original?.text} but was stored (write ${seqs.join(', ')})`,
          );
        }
      }
    }
    // Reused bodies' values never reach the store.
    for (const chain of chains) {
      for (const step of chain) {
        if (step.type !== 'reuse') continue;
        const notes = step.altered.values.notes;
        const stored = sandbox
          .appliedWrites(step.event.referralId)
          .find((write) => enc(adapterFields(write.fields).notes) === enc(notes));
        if (stored !== undefined) {
          violate('wrongAnswer', `seed ${SEED}: the body reusing ${step.event.id} was stored (write ${stored.seq})`);
        }
      }
    }
    // Events answered `updated` have exactly one write; nothing unanswered is silently missing.
    const finalOutcomes: Record<string, number> = {};
    for (const track of tracks.values()) {
      const original = track.original;
      const key =
        original === undefined
          ? 'unresolved (every delivery retryable)'
          : original.status === 200
            ? String(original.body?.outcome)
            : String(original.body?.code ?? original.status);
      bump(finalOutcomes, key);
      if (original === undefined) figures.unresolvedEvents++;
      if (original?.status === 200 && original.body?.outcome === 'updated' && track.writes !== 1) {
        violate('lost', `seed ${SEED}: event ${track.event.id} answered updated with ${track.writes} writes`);
      }
    }

    // Liveness: a caller that retries like Power Automate gets a final answer (a retry-exhausted event is one
    // its caller gives up on).
    if (figures.unresolvedEvents > MAX_UNRESOLVED_EVENTS) {
      violate(
        'unresolved',
        `seed ${SEED}: ${figures.unresolvedEvents} events got only retryable answers after ${CALLER_RETRIES} caller retries (at most ${MAX_UNRESOLVED_EVENTS} allowed); answers by status: ${JSON.stringify(figures.answersByStatus)}`,
      );
    }

    const wallMs = performance.now() - runStarted;
    const totalDeliveries = Object.values(figures.deliveries).reduce((a, b) => a + b, 0);
    const eventsByKind: Record<string, number> = {};
    for (const event of events) bump(eventsByKind, event.kind);
    const report = {
      suite: 'reliability',
      file: 'test/integration/reliability.test.ts',
      date: new Date().toISOString(),
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      seed: SEED,
      faults: { rate: FAULT_RATE, kinds: [...RANDOM_FAULT_KINDS], maxLatencyMs: 50 },
      settings: {
        inFlight: IN_FLIGHT,
        callerRetries: CALLER_RETRIES,
        callerRetryDelayMs: CALLER_RETRY_DELAY_MS,
        upstreamBudgetMs: Number(APP_SETTINGS.UPSTREAM_BUDGET_MS),
        upstreamMaxRetries: Number(APP_SETTINGS.UPSTREAM_MAX_RETRIES),
        concurrencyMaxRetries: Number(APP_SETTINGS.CONCURRENCY_MAX_RETRIES),
        requestTimeoutMs: Number(FAST_RETRY_ENV.UPSTREAM_REQUEST_TIMEOUT_MS),
        retryBaseDelayMs: Number(FAST_RETRY_ENV.RETRY_BASE_DELAY_MS),
        retryMaxDelayMs: Number(FAST_RETRY_ENV.RETRY_MAX_DELAY_MS),
        idempotencyStore: 'table (Azurite)',
      },
      referrals: REFERRALS,
      events: events.length,
      eventsByKind,
      deliveries: {
        total: totalDeliveries,
        first: figures.deliveries.first,
        concurrentDuplicates: figures.deliveries.copy,
        laterRedeliveries: figures.deliveries.redelivery,
        reusedIdDifferentBody: figures.deliveries.reuse,
        reusedIdSkipped: figures.reusesSkipped,
        httpRequests: figures.httpRequests,
        callerRetries: figures.callerRetries,
        failedAfterCallerRetries: figures.deliveriesFailedAfterRetries,
      },
      answers: {
        byStatus: figures.answersByStatus,
        byOutcomeOrCode: figures.answersByOutcome,
        replayed: figures.replayed,
        retryable5xx: figures.retryable5xxAnswers,
      },
      finalOutcomes,
      sandbox: {
        requests: stats.requests,
        puts: stats.puts,
        appliedPuts: stats.appliedPuts,
        rejected412: stats.rejected412,
        faults: stats.faults,
        faultsByKind: stats.faultsByKind,
        externalEdits: Object.values(stats.externalEdits).reduce((a, b) => a + b, 0),
      },
      results: {
        lostUpdates: counts.lost,
        doubleApplications: counts.doubled,
        fieldsLost: counts.fieldsLost,
        responses5xx: counts.responses5xx,
        wrongAnswers: counts.wrongAnswer,
        replayMismatches: counts.replayMismatch,
        notProblemJson: counts.problemJson,
        noAnswer: counts.noAnswer,
        unresolvedEvents: figures.unresolvedEvents,
        unresolvedAllowed: MAX_UNRESOLVED_EVENTS,
        unresolvedFields,
        violations: violations.length,
      },
      timeMs: { total: Math.round(wallMs + startupMs), startup: Math.round(startupMs), driver: Math.round(driverMs) },
      passed: violations.length === 0,
      violationSamples: violations.slice(0, 50),
    };
    mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
    writeFileSync(RESULTS_FILE, `${formatJson(report)}\n`);

    expect(
      violations,
      `seed ${SEED}: ${violations.length} violations (replay with RELIABILITY_SEED=${SEED}); figures in ${RESULTS_FILE}`,
    ).toEqual([]);
    // The run exercised what it claims to.
    for (const kind of RANDOM_FAULT_KINDS) expect(stats.faultsByKind[kind], kind).toBeGreaterThan(0);
    expect(figures.deliveries.copy).toBeGreaterThan(100);
    expect(figures.deliveries.redelivery).toBeGreaterThan(50);
    expect(figures.deliveries.reuse).toBeGreaterThan(5);
    expect(finalOutcomes.stale ?? 0).toBeGreaterThan(20);
    expect(finalOutcomes.referral_closed ?? 0).toBeGreaterThan(5);
  }, 240_000);
});

// ---------------------------------------------------------------------------------------------------------
// The results file

/**
 * JSON laid out the way the project's formatter (Biome) lays it out, so `npm run check` stays clean when
 * test-results/ is on disk: objects one key per line, arrays on one line when they fit in 120 columns.
 */
function formatJson(value: unknown, indent = '', column = 0): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const items = value.map((item) => formatJson(item, inner, inner.length));
    const flat = `[${items.join(', ')}]`;
    if (!flat.includes('\n') && column + flat.length + 1 <= 120) return flat;
    return `[\n${items.map((item) => `${inner}${item}`).join(',\n')}\n${indent}]`;
  }
  if (isRecord(value)) {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return '{}';
    const lines = entries.map(([key, item]) => {
      const prefix = `${inner}${JSON.stringify(key)}: `;
      return `${prefix}${formatJson(item, inner, prefix.length)}`;
    });
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// ---------------------------------------------------------------------------------------------------------
// Helpers for "no field lost"

/** A copy without the fields the adapter writes and those the store or the concurrent writer change. */
function withoutAdapterFields(doc: JsonRecord): JsonRecord {
  const copy = structuredClone(doc);
  delete copy.eTag;
  delete copy.updatedDateTime;
  for (const field of FIELDS) {
    const path = PATHS[field];
    const [first, second] = path;
    if (first === undefined) continue;
    if (second === undefined) delete copy[first];
    else {
      const parent = copy[first];
      if (isRecord(parent)) delete parent[second];
    }
  }
  const attributes = copy.customAttributes;
  if (isRecord(attributes)) delete attributes[EXTERNAL_EDIT_COUNTER];
  return copy;
}

/** JSON pointers where `a` and `b` differ (key order ignored, like JSON equality). */
function differingPaths(a: unknown, b: unknown, at = ''): string[] {
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((key) =>
      !Object.hasOwn(a, key) || !Object.hasOwn(b, key)
        ? [`${at}/${key} (${Object.hasOwn(a, key) ? 'missing' : 'added'})`]
        : differingPaths(a[key], b[key], `${at}/${key}`),
    );
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((item, i) => differingPaths(item, b[i], `${at}/${i}`));
  }
  return isDeepStrictEqual(a, b) ? [] : [`${at || '/'} (${show(a)} → ${show(b)})`];
}
