/**
 * Use case behind `POST /api/referral-updates`: one inbound delivery, start to finish, as a pipeline
 * whose steps are the functions of this file, in this order (see {@link pipeline}):
 *
 * 1. {@link readWithinLimit}: the size limit, before anything is read whole.
 * 2. {@link verifySignature}: when WEBHOOK_SECRETS is set, over the raw bytes, before they are parsed.
 * 3. {@link parseEvent}: the contract (body, headers, query) → an `UpdateEvent`, or a 400 naming the fields;
 *    and how to answer it: now (synchronous), or at once with a status URL (`202`, ./accept-event.ts,
 *    docs/async-delivery.md), the queue worker then running steps 4 to 8 (./deliver-queued-event.ts).
 * 4. {@link oncePerEventId}: idempotency. A redelivered event gets the stored answer with no upstream
 *    call; an id reused for a different event is refused; a copy arriving while the first runs waits.
 *    A dry run skips this step: it never claims an event id and its answer is never stored.
 * 5. {@link inReferralBatch}: one turn per referral at a time in this instance; the events that waited
 *    for the same turn are applied as one batch, with one read and one write (group commit,
 *    ./referral-batch.ts, docs/ordering.md#batches; events with `occurredAt` only with each other, their
 *    ordering claims made for the batch). An event alone in its turn and a dry run go on to steps 6 and 7.
 * 6. {@link inOrder}: ordering, per field (docs/ordering.md). An event whose every field a later event set is
 *    `stale` before anything is read; the per-field decision is then made again after every read (step 7).
 * 7. {@link update}: read → plan → write (./update-referral.ts).
 * 8. {@link answer}: the HTTP answer, stored for replay by step 4 when it is final, and the event record.
 *
 * Steps 4 to 8 are {@link applyEvent}: the same code for a synchronous event and a queued one.
 * One deadline (`UPSTREAM_BUDGET_MS`, from the start of the event) bounds all of it (./deadline.ts).
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { type DeliveryMode, deliveryModeOf } from '../contract/async.js';
import { CORRELATION_HEADER, RESPONSE_HEADERS } from '../contract/headers.js';
import { eventIdFromHeaders, parseUpdateEvent } from '../contract/update-event.js';
import { isAbortOf } from '../core/abort.js';
import { AdapterError, isAdapterError } from '../core/errors.js';
import { fieldsOf, supersededBeforeRead } from '../core/ordering.js';
import type { StageMapping, UpdateEvent, UpdateResult } from '../core/update.js';
import { correlationIdFrom, decodeUtf8, type InboundRequest, parseJsonBody, readBodyBytes } from '../http/inbound.js';
import { asAdapterError, type HttpAnswer, jsonResponse, problemResponse } from '../http/response.js';
import { verifyWebhookSignature } from '../http/webhook-signature.js';
import {
  eventFingerprint,
  type IdempotencyStore,
  type Lease,
  type StoredResponse,
  type VersionedOrdering,
} from '../idempotency/store.js';
import type { PartnerCenterClient } from '../partner-center/client.js';
import {
  type EventLogger,
  type EventOutcome,
  eventRecord,
  type IdempotencyUse,
  logEvent,
  newStats,
  type UpdateStats,
} from '../telemetry/event-record.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { acceptAsync, withEventId } from './accept-event.js';
import type { DeliveryRuntime } from './async-delivery.js';
import { afterDeadline, type EventDeadline, eventDeadline } from './deadline.js';
import { type BatchMember, type ReferralQueues, updateBatch } from './referral-batch.js';
import { staleResult, updateReferral } from './update-referral.js';

export interface EventRequest extends InboundRequest {
  query: { get(name: string): string | null };
  /** The request's absolute URL (the Functions `HttpRequest.url`): the status URL of a `202` has its origin. */
  url: string;
}

/** The answer, ready for any HTTP layer. */
export type EventResponse = HttpAnswer;

const POLL_MS = 200;
/** A claimed event stays leased this long past the update's own time budget. */
export const LEASE_MARGIN_MS = 15_000;
/**
 * An ordering claim outlives the PUT's request timeout by this much (docs/ordering.md): long enough for a
 * request the adapter gave up on to have landed or never to, short enough not to hold the field's later
 * events long after an instance died.
 */
const CLAIM_MARGIN_MS = 5_000;

/** The invocation as the use case needs it: its logger and the trace context the host passed. */
export interface Invocation extends EventLogger {
  traceContext?: { traceParent?: string | null | undefined } | undefined;
}

/** What the pipeline runs on: runtime.ts builds the deployed app's; a unit test passes its own. */
export interface EventRuntime {
  config: Pick<Config, 'inbound' | 'idempotency' | 'retry'>;
  client: PartnerCenterClient;
  idempotency: IdempotencyStore;
  /** One turn per referral at a time within this instance; the events that wait are batched (step 5, ./referral-batch.ts). */
  referrals: ReferralQueues;
  /** How often a duplicate checks whether the first copy has finished; 200 ms unless set (tests shorten it). */
  idempotencyPollMs?: number;
  /** How long an ordering claim outlives its PUT's bound; 5 s unless set (tests shorten it; docs/ordering.md). */
  orderingClaimMarginMs?: number;
  /** Asynchronous delivery (docs/async-delivery.md): absent on the memory store, where a `202` is refused. */
  delivery?: DeliveryRuntime | undefined;
}

export interface EventApp {
  /** Throws `configuration_invalid` (answered as a problem) when the settings are wrong. */
  runtime(): EventRuntime;
  /** Never waits for Application Insights to start: records made before it is ready are kept (docs/telemetry.md#start-up). */
  telemetry(): Telemetry;
}

export async function processEvent(
  request: EventRequest,
  invocation: Invocation,
  app: EventApp,
): Promise<EventResponse> {
  const telemetry = app.telemetry();
  return telemetry.inInvocation(invocation.traceContext?.traceParent, async () => {
    const delivery: Delivery = {
      request,
      logger: invocation,
      correlationId: correlationIdFrom(request.headers),
      stats: newStats(),
      started: performance.now(),
      idempotency: 'none',
    };
    let answered: Answered;
    try {
      answered = await pipeline(delivery, app.runtime());
    } catch (error) {
      answered = answer({ error: asAdapterError(error) }, delivery.correlationId);
    }
    record(delivery, answered.outcome, telemetry);
    return answered.response;
  });
}

/** One delivery as it goes through the pipeline; `event` and `idempotency` are filled in on the way. */
interface Delivery {
  request: EventRequest;
  logger: EventLogger;
  correlationId: string;
  stats: UpdateStats;
  started: number;
  event?: UpdateEvent;
  idempotency: IdempotencyUse;
}

/** What applying one parsed event needs besides the runtime: steps 4 to 8, see {@link applyEvent}. */
export interface ApplyContext {
  correlationId: string;
  logger: EventLogger;
  /** Filled in while the event runs. */
  stats: UpdateStats;
  deadline: EventDeadline;
  /**
   * The idempotency fingerprint of the event; `eventFingerprint(event)` unless given. The queue worker passes
   * the fingerprint of the event as it was accepted (before its `occurredAt` was defaulted).
   */
  fingerprint?: string | undefined;
  /** Set by the idempotency step: `new` or `replayed` once it ran. */
  idempotency: IdempotencyUse;
}

/** What a delivery came to, and the HTTP answer that says so. */
export interface Answered {
  outcome: EventOutcome;
  response: EventResponse;
}

/** The steps, in order. A step that refuses the delivery throws an `AdapterError`, answered as a problem. */
async function pipeline(delivery: Delivery, runtime: EventRuntime): Promise<Answered> {
  const deadline = eventDeadline(runtime.config.retry.budgetMs);
  const bytes = await readWithinLimit(delivery, runtime);
  verifySignature(delivery, runtime, bytes);
  const { event, mode } = parseEvent(delivery, runtime, bytes);
  if (mode === 'async') {
    const accepted = withEventId(event);
    delivery.event = accepted;
    return acceptAsync(accepted, runtime, {
      requestUrl: delivery.request.url,
      correlationId: delivery.correlationId,
      deadline,
    });
  }
  const context: ApplyContext = {
    correlationId: delivery.correlationId,
    logger: delivery.logger,
    stats: delivery.stats,
    deadline,
    idempotency: delivery.idempotency,
  };
  try {
    return await applyEvent(event, runtime, context);
  } finally {
    delivery.idempotency = context.idempotency;
  }
}

/**
 * Steps 4 to 8 on a parsed event: idempotency, the batching step, ordering, the update, the answer. The
 * synchronous pipeline and the queue worker both run this. A refusal of the event (an `AdapterError`) is
 * answered as a problem; anything else is thrown.
 */
export async function applyEvent(event: UpdateEvent, runtime: EventRuntime, context: ApplyContext): Promise<Answered> {
  const { deadline } = context;
  const apply = () =>
    settle(() =>
      inReferralBatch(event, runtime, context, () =>
        inOrder(event, runtime, deadline, (snapshot) => update(context, event, runtime, deadline, snapshot)),
      ),
    ).then((settled) => (event.stage ? withStage(settled, event.stage) : settled));
  try {
    // A dry run writes nothing, so it is no idempotent write: it neither claims nor consumes its event id,
    // and its answer (the whole referral) is never stored.
    if (event.eventId === undefined || event.dryRun) return answer(await apply(), context.correlationId);
    return await oncePerEventId(context, event, event.eventId, runtime, deadline, apply);
  } catch (error) {
    if (isAdapterError(error)) return answer({ error }, context.correlationId);
    throw error;
  }
}

/** 1. The size limit (`413`), enforced while reading. */
function readWithinLimit(delivery: Delivery, runtime: EventRuntime): Promise<Buffer> {
  return readBodyBytes(delivery.request, runtime.config.inbound.maxBodyBytes);
}

/** 2. The signature (`401`), over the raw bytes, so it is checked before anything interprets them. */
function verifySignature(delivery: Delivery, runtime: EventRuntime, bytes: Buffer): void {
  const secrets = runtime.config.inbound.webhookSecrets;
  if (secrets.length > 0) verifyWebhookSignature(secrets, delivery.request.headers, bytes);
}

/**
 * 3. The contract (`400`/`415`): strict UTF-8, JSON, the event schema, the event id from the headers.
 * When signatures are required, only the signed body says whether the delivery is a dry run: `?dryRun=`
 * (outside the signature) is a 400.
 */
function parseEvent(
  delivery: Delivery,
  runtime: EventRuntime,
  bytes: Buffer,
): { event: UpdateEvent; mode: DeliveryMode } {
  const body = parseJsonBody(decodeUtf8(bytes));
  const { headers, query } = delivery.request;
  const mode = deliveryModeOf(headers, query.get('async'), runtime.delivery?.config.default ?? 'sync');
  const event = parseUpdateEvent(body.value, {
    headerEventId: eventIdFromHeaders(headers),
    dryRunQuery: query.get('dryRun'),
    signed: runtime.config.inbound.webhookSecrets.length > 0,
    numberSource: body.numberSource,
    maxClockSkewSeconds: runtime.config.inbound.maxClockSkewSeconds,
    stageMap: runtime.config.inbound.stageMap,
    queryErrors: typeof mode === 'string' ? undefined : [mode],
  });
  delivery.event = event;
  // A dry run is answered at once: it writes nothing, so there is nothing to deliver later.
  return { event, mode: event.dryRun || typeof mode !== 'string' ? 'sync' : mode };
}

/**
 * 4. Idempotency: runs the event at most once per event id; duplicates get the stored answer. A claim
 * is released when the answer is retryable, even when the deadline has just run out (`afterDeadline`);
 * if the store does not answer then either, the claim's lease (budget + 15 s) frees it for a redelivery.
 */
async function oncePerEventId(
  delivery: ApplyContext,
  event: UpdateEvent,
  eventId: string,
  runtime: EventRuntime,
  deadline: EventDeadline,
  apply: () => Promise<Settled>,
): Promise<Answered> {
  const { idempotency: config, retry } = runtime.config;
  const { correlationId } = delivery;
  const store = runtime.idempotency;
  const fingerprint = delivery.fingerprint ?? eventFingerprint(event);
  const retentionMs = config.retentionSeconds * 1000;
  const waitUntil = Date.now() + config.waitMs;
  let lease: Lease | undefined;
  for (;;) {
    const claim = await store.begin(eventId, fingerprint, {
      leaseMs: retry.budgetMs + LEASE_MARGIN_MS,
      retentionMs,
      abortSignal: deadline.signal,
    });
    if (claim.kind === 'started') {
      lease = claim.lease;
      break;
    }
    if (claim.kind === 'replay') {
      delivery.idempotency = 'replayed';
      const replayed = {
        status: claim.response.status,
        headers: {
          ...claim.response.headers,
          [CORRELATION_HEADER]: correlationId,
          [RESPONSE_HEADERS.replayed]: 'true',
        },
        body: claim.response.body,
      };
      return { outcome: { replayed: claim.response }, response: replayed };
    }
    if (claim.kind === 'mismatch') {
      throw new AdapterError(
        'idempotency_key_reused',
        `Event id "${eventId}" was already used for a different event; use a new id for a new event.`,
        { extensions: { referralId: event.referralId } },
      );
    }
    const inProgress = new AdapterError(
      'in_progress',
      `Event "${eventId}" is being processed by another delivery; retry later.`,
      { retryAfterSeconds: 2, extensions: { referralId: event.referralId } },
    );
    if (Date.now() >= waitUntil || deadline.signal.aborted) throw inProgress;
    await sleep(runtime.idempotencyPollMs ?? POLL_MS, undefined, { signal: deadline.signal }).catch(() => {
      throw inProgress;
    });
  }
  delivery.idempotency = 'new';
  const answered = answer(await apply(), correlationId);
  const { response } = answered;
  const recording = afterDeadline(deadline);
  try {
    if (isFinal(response.status)) {
      await store.complete(lease, fingerprint, storedAnswer(response), { retentionMs, abortSignal: recording });
    } else {
      await store.release(lease, { abortSignal: recording });
    }
  } catch (error) {
    // The event itself is done: answer it. A redelivery runs again and finds nothing left to change.
    const detail = error instanceof AdapterError ? error.message : 'unknown error';
    delivery.logger.warn(
      JSON.stringify({ event: 'referral-update', correlationId, logCode: 'IDEMPOTENCY_RECORD_FAILED', detail }),
    );
  }
  return answered;
}

/**
 * An answer as it is stored for replay (step 4) and for the status URL: without this delivery's correlation id or
 * replay marker, which every delivery sets anew.
 */
export function storedAnswer(response: StoredResponse): StoredResponse {
  const headers = Object.fromEntries(
    Object.entries(response.headers).filter(
      ([name]) =>
        name.toLowerCase() !== CORRELATION_HEADER.toLowerCase() &&
        name.toLowerCase() !== RESPONSE_HEADERS.replayed.toLowerCase(),
    ),
  );
  return { status: response.status, headers, body: response.body };
}

/** The event's outcome is its own (not the infrastructure's), so a redelivery must get the same answer. */
export function isFinal(status: number): boolean {
  return status < 500 && status !== 409 && status !== 429;
}

/**
 * 5. The batching step: the event waits for its referral's turn in this instance (waiting counts against its
 * deadline), then is applied alone (`alone`: steps 6 and 7) or, with the batchable events that waited for
 * the same turn, as one batch (./referral-batch.ts, docs/ordering.md#batches).
 */
async function inReferralBatch(
  event: UpdateEvent,
  runtime: EventRuntime,
  context: ApplyContext,
  alone: () => Promise<UpdateResult>,
): Promise<UpdateResult> {
  const { referralId } = event;
  const { deadline } = context;
  const member: BatchMember = {
    event,
    deadline,
    correlationId: context.correlationId,
    stats: context.stats,
    alone,
    ...(event.eventId === undefined
      ? {}
      : { claimId: claimIdOf(event.eventId, context.fingerprint ?? eventFingerprint(event)) }),
  };
  try {
    return await runtime.referrals.join(member, (members) =>
      updateBatch(members, {
        client: runtime.client,
        retry: runtime.config.retry,
        ordering: { store: runtime.idempotency, marginMs: runtime.orderingClaimMarginMs ?? CLAIM_MARGIN_MS },
      }),
    );
  } catch (error) {
    if (!isAbortOf(error, deadline.signal)) throw error;
    throw new AdapterError(
      'upstream_timeout',
      `The time budget of ${runtime.config.retry.budgetMs} ms for this event ran out before it could take its turn on referral ${referralId}.`,
      { cause: error, extensions: { referralId } },
    );
  }
}

/**
 * 6. Ordering, per field (docs/ordering.md): the referral's ordering record is read once; an event whose
 * every field a later event has set (confirmed) is `stale` without a call to Partner Center. Otherwise the
 * record goes to the update, which decides again after every read and claims the fields it writes.
 */
async function inOrder(
  event: UpdateEvent,
  runtime: EventRuntime,
  deadline: EventDeadline,
  work: (snapshot: VersionedOrdering | undefined) => Promise<UpdateResult>,
): Promise<UpdateResult> {
  const { referralId, occurredAt } = event;
  const fields = fieldsOf(event.intent);
  // No field to order (a stage STAGE_MAP maps to null, alone): nothing can be stale; the answer reads the referral.
  if (occurredAt === undefined || fields.length === 0) return work(undefined);
  const snapshot = await runtime.idempotency.readOrdering(referralId, { abortSignal: deadline.signal });
  const superseded = supersededBeforeRead(snapshot.record, occurredAt, fields);
  if (superseded.length === fields.length) return staleResult(event, superseded);
  return work(snapshot);
}

/** 7. The update: read → plan → write, with its retries and 412 loop (./update-referral.ts). */
function update(
  delivery: ApplyContext,
  event: UpdateEvent,
  runtime: EventRuntime,
  deadline: EventDeadline,
  snapshot: VersionedOrdering | undefined,
): Promise<UpdateResult> {
  const ordering = snapshot && {
    store: runtime.idempotency,
    snapshot,
    marginMs: runtime.orderingClaimMarginMs ?? CLAIM_MARGIN_MS,
    ...(event.eventId === undefined
      ? {}
      : { claimId: claimIdOf(event.eventId, delivery.fingerprint ?? eventFingerprint(event)) }),
  };
  return updateReferral(
    event,
    { client: runtime.client, retry: runtime.config.retry, ...(ordering ? { ordering } : {}) },
    {
      correlationId: delivery.correlationId,
      stats: delivery.stats,
      abortSignal: deadline.signal,
      expiresAt: deadline.clock.expiresAt,
    },
  );
}

/**
 * The ordering claim id of an event with an id: the same for every delivery of it, so that a redelivery
 * after a lost answer takes over its own claim instead of waiting for it to lapse (docs/ordering.md). One
 * delivery of an id runs at a time (step 4); an event without an id gets a fresh claim id per delivery.
 */
function claimIdOf(eventId: string, fingerprint: string): string {
  return createHash('sha256').update(`${eventId}\n${fingerprint}`).digest('base64url').slice(0, 22);
}

export type Settled = { ok: UpdateResult } | { error: AdapterError };

/** The refusals of the transition rules, which a stage's mapping explains. */
const RULE_REFUSALS: readonly string[] = ['transition_not_allowed', 'referral_closed'];

/** The answer of an event that named a CRM stage says what it mapped to: its 200, and a refusal of the rules. */
function withStage(settled: Settled, stage: StageMapping): Settled {
  if ('ok' in settled) return { ok: { ...settled.ok, stage } };
  const { error } = settled;
  if (!RULE_REFUSALS.includes(error.code)) return settled;
  return {
    error: new AdapterError(error.code, error.message, {
      extensions: { ...error.extensions, stage },
      ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
      ...(error.logCode === undefined ? {} : { logCode: error.logCode }),
      cause: error.cause,
    }),
  };
}

async function settle(run: () => Promise<UpdateResult>): Promise<Settled> {
  try {
    return { ok: await run() };
  } catch (error) {
    return { error: asAdapterError(error) };
  }
}

/** 8. The answer: `200` with the result, or the problem document of the error. */
export function answer(outcome: Settled, correlationId: string): Answered {
  const response =
    'ok' in outcome ? jsonResponse(200, outcome.ok, correlationId) : problemResponse(outcome.error, correlationId);
  return { outcome, response };
}

/** The event's summary line and telemetry record, whatever it came to. */
function record(delivery: Delivery, outcome: EventOutcome, telemetry: Telemetry): void {
  const { event, stats } = delivery;
  const summary = eventRecord(
    {
      correlationId: delivery.correlationId,
      referralId: event?.referralId,
      eventId: event?.eventId,
      idempotency: delivery.idempotency,
      stats,
      durationMs: performance.now() - delivery.started,
    },
    outcome,
  );
  logEvent(delivery.logger, summary, outcome);
  telemetry.recordEvent(summary, stats.upstreamDurationsMs);
}
