/**
 * In-process harness of the use cases: test settings, a referral as Partner Center returns it, and ONE
 * helper per use-case call (`runUpdate`, `deliver`), so a change of signature is adapted here only.
 * Pair with the scripted client of ./scripted-partner-center.ts.
 */
import { type Config, parseConfig } from '../../shared/config.js';
import { parseUpdateEvent } from '../../shared/contract/update-event.js';
import type { JsonObject } from '../../shared/core/referral.js';
import type { UpdateEvent, UpdateResult } from '../../shared/core/update.js';
import { createMemoryDeliveryStore, createMemoryEventQueue } from '../../shared/delivery/store.js';
import { createMemoryIdempotencyStore, type IdempotencyStore } from '../../shared/idempotency/store.js';
import type { PartnerCenterClient } from '../../shared/partner-center/client.js';
import type { UpdateStats } from '../../shared/telemetry/event-record.js';
import type { Telemetry } from '../../shared/telemetry/telemetry.js';
import type { AsyncDeliverySettings } from '../../shared/use-cases/async-delivery.js';
import { deadLetterEvent } from '../../shared/use-cases/dead-letter-event.js';
import { deliverQueuedEvent, type WorkerClock } from '../../shared/use-cases/deliver-queued-event.js';
import { eventStatus } from '../../shared/use-cases/event-status.js';
import {
  type EventApp,
  type EventRequest,
  type EventResponse,
  type EventRuntime,
  type Invocation,
  processEvent,
} from '../../shared/use-cases/process-event.js';
import { ReferralQueues } from '../../shared/use-cases/referral-batch.js';
import { type UpdateDependencies, updateReferral } from '../../shared/use-cases/update-referral.js';

export const REFERRAL_ID = 'ref-0001';
export const CORRELATION_ID = '00000000-0000-4000-8000-0000000000c1';

/** Settings by name, as in the README's configuration table; undefined leaves one at its default. */
export type Settings = Readonly<Record<string, string | undefined>>;

/** Memory store, millisecond backoff: a use-case test never waits on a real delay. */
const TEST_SETTINGS: Settings = {
  IDEMPOTENCY_STORE: 'memory',
  RETRY_BASE_DELAY_MS: '1',
  RETRY_MAX_DELAY_MS: '5',
};

/** A valid configuration from settings (the names of the README's table), over {@link TEST_SETTINGS}. */
export function testConfig(settings: Settings = {}): Config {
  const parsed = parseConfig({ ...TEST_SETTINGS, ...settings });
  if (!parsed.ok) throw new Error(`test settings are invalid: ${parsed.problems.join('; ')}`);
  return parsed.config;
}

/** The dependencies of `updateReferral`; jitter draws 0, so every backoff sleep is 0 ms. */
export function updateDeps(client: PartnerCenterClient, settings: Settings = {}): UpdateDependencies {
  return { client, retry: testConfig(settings).retry, random: () => 0 };
}

/** An event as the contract parses it, for {@link REFERRAL_ID} unless the body names another. */
export function updateEvent(body: Record<string, unknown>): UpdateEvent {
  return parseUpdateEvent({ referralId: REFERRAL_ID, ...body });
}

/** The one call of `updateReferral` in the unit tests. */
export function runUpdate(
  event: UpdateEvent,
  deps: UpdateDependencies,
  options: { correlationId?: string; stats?: UpdateStats; abortSignal?: AbortSignal } = {},
): Promise<UpdateResult> {
  return updateReferral(event, deps, { ...options, correlationId: options.correlationId ?? CORRELATION_ID });
}

/**
 * A referral as the GET returns it (https://learn.microsoft.com/partner-center/developer/get-a-list-of-referrals),
 * New/Pending by default, with keys the adapter does not know (they must come back untouched) and the
 * read-only `links`. `fields` replace top-level keys; `details` is merged into the default details.
 */
export function referral(fields: Record<string, unknown> & { details?: Record<string, unknown> } = {}): JsonObject {
  const { details, ...rest } = fields;
  return {
    id: REFERRAL_ID,
    engagementId: 'eng-0001',
    organizationId: 'org-0001',
    organizationName: 'Contoso Company',
    name: 'Fabrikam supply chain modernisation',
    externalReferenceId: null,
    status: 'New',
    substatus: 'Pending',
    statusReason: '',
    qualification: 'SalesQualified',
    type: 'Independent',
    customerProfile: { name: 'Fabrikam Inc', address: { country: 'US', region: 'North America' }, ids: [] },
    details: {
      notes: 'Looking at Dynamics 365.',
      dealValue: 50000,
      currency: 'USD',
      closingDateTime: '2026-12-15T00:00:00Z',
      requirements: { industries: [{ id: 'Manufacturing' }], additionalRequirements: { iot: {} } },
      ...details,
    },
    partnerRole: 'SolutionDesign',
    links: { relatedEngagement: { uri: '/engagements/eng-0001', method: 'GET' } },
    eTag: '"e1"',
    ...(rest as JsonObject),
  } as JsonObject;
}

/** Events of one app; `lines` collects what the use case logged. */
export interface TestApp extends EventApp {
  runtimeValue: EventRuntime;
  lines: string[];
}

/** An {@link EventApp} on the scripted client and a fresh memory store, as shared/use-cases/process-event.ts describes it. */
export function testApp(
  client: PartnerCenterClient,
  options: { settings?: Settings; idempotency?: IdempotencyStore } = {},
): TestApp {
  const runtimeValue: EventRuntime = {
    config: testConfig(options.settings),
    client,
    idempotency: options.idempotency ?? createMemoryIdempotencyStore(),
    referrals: new ReferralQueues(),
    idempotencyPollMs: 2,
  };
  const telemetry: Telemetry = { inInvocation: (_traceParent, work) => work(), recordEvent: () => {} };
  return { runtimeValue, lines: [], runtime: () => runtimeValue, telemetry: () => telemetry };
}

export interface Delivery {
  /** The JSON body, or raw text/bytes sent as they are. */
  body: unknown;
  headers?: Record<string, string>;
  /** e.g. `{ dryRun: 'true' }`. */
  query?: Record<string, string>;
  /** The request URL (its origin is the status URL's); the local host's unless given. */
  url?: string;
}

/** The URL of a POST /api/referral-updates in the unit tests. */
export const EVENT_URL = 'http://localhost:7071/api/referral-updates';

/** A POST /api/referral-updates as the use case sees it (Content-Type: application/json unless given). */
export function eventRequest({ body, headers = {}, query = {}, url = EVENT_URL }: Delivery): EventRequest {
  const bytes =
    typeof body === 'string'
      ? Buffer.from(body)
      : body instanceof Uint8Array
        ? body
        : Buffer.from(JSON.stringify(body));
  return {
    headers: new Headers({ 'content-type': 'application/json', ...headers }),
    query: new URLSearchParams(query),
    url,
    arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
  };
}

/** The one call of `processEvent` in the unit tests: one delivery, its answer with the body parsed. */
export async function deliver(
  app: TestApp,
  delivery: Delivery,
): Promise<EventResponse & { json: Record<string, unknown> }> {
  const record = (...args: unknown[]) => app.lines.push(args.map(String).join(' '));
  const invocation: Invocation = { log: record, warn: record, error: record };
  const response = await processEvent(eventRequest(delivery), invocation, app);
  return { ...response, json: JSON.parse(response.body) as Record<string, unknown> };
}

/** Asynchronous delivery's settings in the unit tests (the defaults of docs/async-delivery.md but a 1-hour max age). */
export const DELIVERY_SETTINGS: AsyncDeliverySettings = {
  default: 'sync',
  maxAgeSeconds: 3600,
  retryMinSeconds: 30,
  retryMaxSeconds: 900,
  pollSeconds: 5,
  queueName: 'referral-updates',
};

/** Gives the app asynchronous delivery on a memory store and queue (what runtime.ts wires on the Table store). */
export function withDelivery(app: TestApp, settings: Partial<AsyncDeliverySettings> = {}) {
  const store = createMemoryDeliveryStore();
  const queue = createMemoryEventQueue();
  const config = { ...DELIVERY_SETTINGS, ...settings };
  app.runtimeValue.delivery = { store, queue, config };
  return { store, queue, config };
}

function invocationOf(app: TestApp): Invocation {
  const record = (...args: unknown[]) => app.lines.push(args.map(String).join(' '));
  return { log: record, warn: record, error: record };
}

/** The one call of the queue worker in the unit tests: one message (`{ v: 1, eventId }` unless given raw). */
export function work(app: TestApp, message: string | unknown, clock?: WorkerClock): Promise<void> {
  const body = typeof message === 'string' ? { v: 1, eventId: message } : message;
  return deliverQueuedEvent(body, invocationOf(app), app, clock);
}

/** The one call of the poison queue's handler in the unit tests. */
export function deadLetter(app: TestApp, message: string | unknown, now?: () => number): Promise<void> {
  const body = typeof message === 'string' ? { v: 1, eventId: message } : message;
  return deadLetterEvent(body, invocationOf(app), app, now ? { now } : undefined);
}

/** The one call of the status URL in the unit tests: a GET of `statusUrl`, its answer with the body parsed. */
export async function poll(
  app: TestApp,
  statusUrl: string,
  options: { now?: () => number; headers?: Record<string, string> } = {},
): Promise<EventResponse & { json: Record<string, unknown> }> {
  const url = new URL(statusUrl);
  const statusId = decodeURIComponent(url.pathname.split('/').pop() ?? '');
  const response = await eventStatus(
    { statusId, url: statusUrl, headers: new Headers(options.headers ?? {}) },
    app,
    options.now ? { now: options.now } : undefined,
  );
  return { ...response, json: JSON.parse(response.body) as Record<string, unknown> };
}
