/**
 * The status URL of an accepted event (docs/async-delivery.md#status-url), `GET /api/referral-updates/status/{statusId}`,
 * anonymous: the status id carries the event's own token. Unknown event, wrong token or malformed id: `404
 * event_not_found`, nothing else revealed.
 *
 * - pending (`queued`, `running`, `retrying`): `202` with the same `Location` and a `Retry-After`;
 * - done (`succeeded`, `failed`): the answer a synchronous call would have had, with `state` added;
 * - given up (`dead_lettered`): `424` problem `dead_lettered` with its attempts, times, last error and how to replay.
 */
import { ASYNC_HEADERS, type PendingStatus } from '../contract/async.js';
import { CORRELATION_HEADER, RESPONSE_HEADERS } from '../contract/headers.js';
import { AdapterError } from '../core/errors.js';
import { type DeliveryRecord, POISON_ERROR } from '../delivery/store.js';
import { correlationIdFrom } from '../http/inbound.js';
import { asAdapterError, jsonResponse, problemResponse } from '../http/response.js';
import { unavailable } from './accept-event.js';
import {
  type AsyncDeliverySettings,
  parseStatusId,
  replayPathOf,
  statusUrlOf,
  tokenMatches,
} from './async-delivery.js';
import type { EventApp, EventResponse } from './process-event.js';

/** The poll of a status URL as the use case needs it. */
export interface StatusRequest {
  /** The `{statusId}` of the route. */
  statusId: string;
  /** The request's absolute URL (its origin is the `Location`'s). */
  url: string;
  headers: { get(name: string): string | null };
}

/** How long one store read may take. */
const READ_TIMEOUT_MS = 10_000;
/** Bounds of a `retrying` event's `Retry-After`. */
const MIN_RETRY_AFTER_SECONDS = 1;
const MAX_RETRY_AFTER_SECONDS = 60;

const notFound = () => new AdapterError('event_not_found', 'No event is known under this status URL.', {});

export async function eventStatus(
  request: StatusRequest,
  app: Pick<EventApp, 'runtime'>,
  clock: { now(): number } = { now: () => Date.now() },
): Promise<EventResponse> {
  const correlationId = correlationIdFrom(request.headers);
  try {
    return await status(request, app, clock, correlationId);
  } catch (error) {
    return problemResponse(asAdapterError(error), correlationId);
  }
}

async function status(
  request: StatusRequest,
  app: Pick<EventApp, 'runtime'>,
  clock: { now(): number },
  correlationId: string,
): Promise<EventResponse> {
  // Without asynchronous delivery (the memory store) no event was ever accepted: nothing to find.
  const delivery = app.runtime().delivery;
  const parsed = parseStatusId(request.statusId);
  if (!delivery || !parsed) throw notFound();
  let record: DeliveryRecord | undefined;
  try {
    record = await delivery.store.get(parsed.eventId, { abortSignal: AbortSignal.timeout(READ_TIMEOUT_MS) });
  } catch (error) {
    throw unavailable(error, 'looked up');
  }
  if (!record || !tokenMatches(record, parsed.token)) throw notFound();
  const { state } = record;
  switch (state) {
    case 'queued':
    case 'running':
    case 'retrying':
      return pending({ ...record, state }, request, delivery.config, clock, correlationId);
    case 'succeeded':
    case 'failed':
      return done({ ...record, state }, correlationId);
    case 'dead_lettered':
      throw deadLettered(record);
  }
}

function pending(
  record: DeliveryRecord & { state: PendingStatus['state'] },
  request: StatusRequest,
  settings: Pick<AsyncDeliverySettings, 'pollSeconds'>,
  clock: { now(): number },
  correlationId: string,
): EventResponse {
  const body: PendingStatus = {
    referralId: record.referralId,
    eventId: record.eventId,
    state: record.state,
    attempts: record.attempts,
    nextAttemptAt: record.state === 'retrying' ? record.nextAttemptAt : null,
    lastError: record.lastError && { code: record.lastError.code, status: record.lastError.status },
  };
  return jsonResponse(202, body, correlationId, {
    [ASYNC_HEADERS.location]: statusUrlOf(request.url, record),
    [RESPONSE_HEADERS.retryAfter]: String(retryAfterSeconds(record, settings, clock.now())),
  });
}

/** `retrying`: the seconds until the next attempt, 1 to 60; otherwise ASYNC_POLL_SECONDS. */
export function retryAfterSeconds(
  record: Pick<DeliveryRecord, 'state' | 'nextAttemptAt'>,
  settings: Pick<AsyncDeliverySettings, 'pollSeconds'>,
  now: number,
): number {
  if (record.state !== 'retrying' || record.nextAttemptAt === null) return settings.pollSeconds;
  const until = Math.ceil((Date.parse(record.nextAttemptAt) - now) / 1000);
  if (!Number.isFinite(until)) return settings.pollSeconds;
  return Math.max(MIN_RETRY_AFTER_SECONDS, Math.min(MAX_RETRY_AFTER_SECONDS, until));
}

/** The stored final answer, `state` added to its JSON body, with the poll's correlation id. */
function done(record: DeliveryRecord & { state: 'succeeded' | 'failed' }, correlationId: string): EventResponse {
  const { answer } = record;
  if (!answer) throw new Error(`delivery record in state ${record.state} without its answer`);
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    throw new Error('delivery record with an answer that is not JSON');
  }
  const contentType =
    Object.entries(answer.headers).find(([name]) => name.toLowerCase() === 'content-type')?.[1] ??
    'application/json; charset=utf-8';
  return {
    status: answer.status,
    headers: { 'content-type': contentType, 'cache-control': 'no-store', [CORRELATION_HEADER]: correlationId },
    body: JSON.stringify({ ...(body as Record<string, unknown>), state: record.state }),
  };
}

/** The `424`: why the event was given up and how to replay it. */
export function deadLettered(record: DeliveryRecord): AdapterError {
  const { lastError, attempts } = record;
  const path = replayPathOf(record.eventId);
  const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  const given =
    lastError?.code === POISON_ERROR.code
      ? `The event's queue message failed every time the host delivered it (poison queue) after ${tries}`
      : `The event could not be applied within its maximum age (ASYNC_MAX_AGE_SECONDS) after ${tries}${
          lastError ? `; the last attempt ended in ${lastError.status} ${lastError.code}` : ''
        }`;
  return new AdapterError(
    'dead_lettered',
    `${given}. Once the cause is fixed, replay it: POST ${path} with the function key.`,
    {
      extensions: {
        state: 'dead_lettered',
        referralId: record.referralId,
        eventId: record.eventId,
        attempts,
        acceptedAt: record.acceptedAt,
        lastAttemptAt: record.lastAttemptAt,
        deadLetteredAt: record.deadLetteredAt,
        lastError: lastError && { code: lastError.code, status: lastError.status },
        replay: { method: 'POST', path },
      },
    },
  );
}
