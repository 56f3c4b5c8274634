/**
 * Use case behind `POST /api/referral-updates`: one inbound delivery, start to finish.
 *
 * size limit → signature (when WEBHOOK_SECRETS is set, before the body is parsed) → contract →
 * idempotency (a redelivered event gets the stored answer with no upstream call; an id reused for a
 * different event is refused; a copy arriving while the first runs waits for it) → per-referral lock
 * (one update per referral at a time in this instance) → ordering (`occurredAt` older than the last
 * applied event: stale) → the update → the answer, stored for replay when it is final.
 * One deadline (`UPSTREAM_BUDGET_MS`, from the start of the event) bounds all of it (./deadline.ts).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { CORRELATION_HEADER, RESPONSE_HEADERS } from '../contract/headers.js';
import { eventIdFromHeaders, parseUpdateEvent } from '../contract/update-event.js';
import { AdapterError } from '../core/errors.js';
import type { UpdateEvent, UpdateResult } from '../core/update.js';
import { correlationIdFrom, decodeUtf8, type InboundRequest, parseJsonBody, readBodyBytes } from '../http/inbound.js';
import { asAdapterError, jsonResponse, problemResponse } from '../http/response.js';
import { verifyWebhookSignature } from '../http/webhook-signature.js';
import { eventFingerprint, type IdempotencyStore, type Lease } from '../idempotency/store.js';
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
import { afterDeadline, eventDeadline, isDeadlineAbort } from './deadline.js';
import type { KeyedLock } from './keyed-lock.js';
import { updateReferral } from './update-referral.js';

export interface EventRequest extends InboundRequest {
  query: { get(name: string): string | null };
}

/** The answer, ready for any HTTP layer. */
export interface EventResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const POLL_MS = 200;
/** A claimed event stays leased this long past the update's own time budget. */
const LEASE_MARGIN_MS = 15_000;

/** The invocation as the use case needs it: its logger and the trace context the host passed. */
export interface Invocation extends EventLogger {
  traceContext?: { traceParent?: string | null | undefined } | undefined;
}

/** What the pipeline runs on: runtime.ts builds the deployed app's; a unit test passes its own. */
export interface EventRuntime {
  config: Pick<Config, 'inbound' | 'idempotency' | 'retry'>;
  client: PartnerCenterClient;
  idempotency: IdempotencyStore;
  /** Serializes updates per referral within this instance. */
  lock: KeyedLock;
  /** How often a duplicate checks whether the first copy has finished; 200 ms unless set (tests shorten it). */
  idempotencyPollMs?: number;
}

export interface EventApp {
  /** Throws `configuration_invalid` (answered as a problem) when the settings are wrong. */
  runtime(): EventRuntime;
  telemetry(): Promise<Telemetry>;
}

export async function processEvent(
  request: EventRequest,
  invocation: Invocation,
  app: EventApp,
): Promise<EventResponse> {
  const telemetry = await app.telemetry();
  return telemetry.inInvocation(invocation.traceContext?.traceParent, () =>
    handle(request, invocation, telemetry, app),
  );
}

async function handle(
  request: EventRequest,
  logger: EventLogger,
  telemetry: Telemetry,
  app: EventApp,
): Promise<EventResponse> {
  const started = performance.now();
  const correlationId = correlationIdFrom(request.headers);
  const stats = newStats();
  let event: UpdateEvent | undefined;
  let idempotency: IdempotencyUse = 'none';
  let response: EventResponse;
  let outcome: EventOutcome;
  try {
    const runtime = app.runtime();
    const deadline = eventDeadline(runtime.config.retry.budgetMs);
    const bytes = await readBodyBytes(request, runtime.config.inbound.maxBodyBytes);
    const secrets = runtime.config.inbound.webhookSecrets;
    // The signature covers the raw bytes, so it is checked before anything interprets them.
    if (secrets.length > 0) verifyWebhookSignature(secrets, request.headers, bytes);
    event = parseUpdateEvent(parseJsonBody(decodeUtf8(bytes)), {
      headerEventId: eventIdFromHeaders(request.headers),
      dryRunQuery: request.query.get('dryRun'),
    });
    const parsed = event;
    const run = () => applyEvent(parsed, runtime, correlationId, stats, deadline);
    if (parsed.eventId === undefined) {
      outcome = await settle(run);
      response = toResponse(outcome, correlationId);
    } else {
      ({ outcome, response, idempotency } = await once(
        parsed,
        parsed.eventId,
        runtime,
        correlationId,
        run,
        logger,
        deadline,
      ));
    }
  } catch (error) {
    outcome = { error: asAdapterError(error) };
    response = toResponse(outcome, correlationId);
  }
  const record = eventRecord(
    {
      correlationId,
      referralId: event?.referralId,
      eventId: event?.eventId,
      idempotency,
      stats,
      durationMs: performance.now() - started,
    },
    outcome,
  );
  logEvent(logger, record, outcome);
  telemetry.recordEvent(record, stats.upstreamDurationsMs);
  return response;
}

async function settle(run: () => Promise<UpdateResult>): Promise<{ ok: UpdateResult } | { error: AdapterError }> {
  try {
    return { ok: await run() };
  } catch (error) {
    return { error: asAdapterError(error) };
  }
}

function toResponse(outcome: { ok: UpdateResult } | { error: AdapterError }, correlationId: string): EventResponse {
  const init =
    'ok' in outcome ? jsonResponse(200, outcome.ok, correlationId) : problemResponse(outcome.error, correlationId);
  return { status: init.status ?? 200, headers: init.headers as Record<string, string>, body: String(init.body ?? '') };
}

/** The event's outcome is its own (not the infrastructure's), so a redelivery must get the same answer. */
function isFinal(status: number): boolean {
  return status < 500 && status !== 409 && status !== 429;
}

/**
 * Runs the event at most once per event id; duplicates get the stored answer. A claim is released when
 * the answer is retryable, even when the deadline has just run out (`afterDeadline`); if the store does
 * not answer then either, the claim's lease (budget + 15 s) frees it for a redelivery.
 */
async function once(
  event: UpdateEvent,
  eventId: string,
  runtime: EventRuntime,
  correlationId: string,
  run: () => Promise<UpdateResult>,
  logger: EventLogger,
  deadline: AbortSignal,
): Promise<{ outcome: EventOutcome; response: EventResponse; idempotency: IdempotencyUse }> {
  const { idempotency: config, retry } = runtime.config;
  const store = runtime.idempotency;
  const fingerprint = eventFingerprint(event);
  const retentionMs = config.retentionSeconds * 1000;
  const waitUntil = Date.now() + config.waitMs;
  let lease: Lease | undefined;
  for (;;) {
    const claim = await store.begin(eventId, fingerprint, {
      leaseMs: retry.budgetMs + LEASE_MARGIN_MS,
      retentionMs,
      abortSignal: deadline,
    });
    if (claim.kind === 'started') {
      lease = claim.lease;
      break;
    }
    if (claim.kind === 'replay') {
      const replayed = {
        status: claim.response.status,
        headers: {
          ...claim.response.headers,
          [CORRELATION_HEADER]: correlationId,
          [RESPONSE_HEADERS.replayed]: 'true',
        },
        body: claim.response.body,
      };
      return { outcome: { replayed: claim.response }, response: replayed, idempotency: 'replayed' };
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
    if (Date.now() >= waitUntil || deadline.aborted) throw inProgress;
    await sleep(runtime.idempotencyPollMs ?? POLL_MS, undefined, { signal: deadline }).catch(() => {
      throw inProgress;
    });
  }
  const outcome = await settle(run);
  const response = toResponse(outcome, correlationId);
  const recording = afterDeadline(deadline);
  try {
    if (isFinal(response.status)) {
      const { [CORRELATION_HEADER]: _c, ...headers } = response.headers;
      const stored = { status: response.status, headers, body: response.body };
      await store.complete(lease, fingerprint, stored, { retentionMs, abortSignal: recording });
    } else {
      await store.release(lease, { abortSignal: recording });
    }
  } catch (error) {
    // The event itself is done: answer it. A redelivery runs again and finds nothing left to change.
    const detail = error instanceof AdapterError ? error.message : 'unknown error';
    logger.warn(
      JSON.stringify({ event: 'referral-update', correlationId, logCode: 'IDEMPOTENCY_RECORD_FAILED', detail }),
    );
  }
  return { outcome, response, idempotency: 'new' };
}

/** Per-referral lock, ordering check, update, ordering record. */
async function applyEvent(
  event: UpdateEvent,
  runtime: EventRuntime,
  correlationId: string,
  stats: UpdateStats,
  deadline: AbortSignal,
): Promise<UpdateResult> {
  const { referralId, occurredAt } = event;
  const work = async (): Promise<UpdateResult> => {
    if (occurredAt !== undefined) {
      const last = await runtime.idempotency.lastOccurredAt(referralId, { abortSignal: deadline });
      if (last !== undefined && Date.parse(occurredAt) < Date.parse(last)) {
        return {
          referralId,
          ...(event.eventId === undefined ? {} : { eventId: event.eventId }),
          outcome: 'stale',
          status: null,
          substatus: null,
          eTag: null,
          changes: [],
          lastAppliedOccurredAt: last,
        };
      }
    }
    const result = await updateReferral(
      event,
      { client: runtime.client, retry: runtime.config.retry },
      { correlationId, stats, abortSignal: deadline },
    );
    if (occurredAt !== undefined && (result.outcome === 'updated' || result.outcome === 'unchanged')) {
      // The update is done: its ordering record gets the grace past the deadline, like the answer's.
      await runtime.idempotency.recordOccurredAt(referralId, occurredAt, { abortSignal: afterDeadline(deadline) });
    }
    return result;
  };
  try {
    return await runtime.lock.run(referralId, work, { abortSignal: deadline });
  } catch (error) {
    if (!isDeadlineAbort(error, deadline)) throw error;
    throw new AdapterError(
      'upstream_timeout',
      `The time budget of ${runtime.config.retry.budgetMs} ms for this event ran out while an earlier update of referral ${referralId} was still running.`,
      { cause: error, extensions: { referralId } },
    );
  }
}
