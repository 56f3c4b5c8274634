/**
 * Operations on accepted events (docs/async-delivery.md#operations), behind the function key:
 * - `GET /api/referral-updates/events?state=&referralId=&top=&continuationToken=`: events by state and referral;
 * - `GET /api/referral-updates/events/{eventId}`: one event;
 * - `POST /api/referral-updates/events/{eventId}/replay`: a `dead_lettered` event back in the queue, under the
 *   same id, with a new maximum-age window.
 * Ids, states, times, codes and changed paths only: never the event's values or its answer.
 */
import { DELIVERY_STATE_VALUES, type DeliveryList } from '../contract/async.js';
import { AdapterError, type FieldError, isAdapterError } from '../core/errors.js';
import type { DeliveryFilter, DeliveryRecord, DeliveryState } from '../delivery/store.js';
import { correlationIdFrom } from '../http/inbound.js';
import { asAdapterError, jsonResponse, problemResponse } from '../http/response.js';
import { deliveryOf, unavailable } from './accept-event.js';
import { acceptedResponse, summaryOf } from './async-delivery.js';
import type { EventApp, EventResponse } from './process-event.js';

export interface OperationsRequest {
  /** The request's absolute URL (the status URL of a replay has its origin). */
  url: string;
  headers: { get(name: string): string | null };
  query: { get(name: string): string | null };
}

const DEFAULT_TOP = 50;
const MAX_TOP = 200;
/** How long one operation's store calls may take. */
const OPERATION_TIMEOUT_MS = 15_000;
/** The URL spelling of `dead_lettered`, accepted in `?state=`. */
const STATE_ALIASES: Record<string, DeliveryState> = { 'dead-lettered': 'dead_lettered' };

type Operations = Pick<EventApp, 'runtime'>;

/** `GET …/events`: a page of events, filtered by state and referral. */
export function listEvents(request: OperationsRequest, app: Operations): Promise<EventResponse> {
  return operation(request, async (correlationId) => {
    const filter = listFilter(request.query);
    const { store } = deliveryOf(app.runtime());
    const page = await read(() => store.list(filter, { abortSignal: AbortSignal.timeout(OPERATION_TIMEOUT_MS) }));
    const body: DeliveryList = {
      items: page.items.map(summaryOf),
      ...(page.continuationToken === undefined ? {} : { continuationToken: page.continuationToken }),
    };
    return jsonResponse(200, body, correlationId);
  });
}

/** `GET …/events/{eventId}`: one event's summary, or `404 event_not_found`. */
export function getEvent(eventId: string, request: OperationsRequest, app: Operations): Promise<EventResponse> {
  return operation(request, async (correlationId) => {
    const { store } = deliveryOf(app.runtime());
    const record = await read(() => store.get(eventId, { abortSignal: AbortSignal.timeout(OPERATION_TIMEOUT_MS) }));
    if (!record) throw notFound(eventId);
    return jsonResponse(200, summaryOf(record), correlationId);
  });
}

/**
 * `POST …/events/{eventId}/replay`: a `dead_lettered` event goes back to `queued` (attempts kept, `acceptedAt`
 * now: a new maximum-age window; its ordering time stays the first acceptance) and its message is sent; the
 * answer is the `202` of an accepted event. Any other state: `409 replay_not_allowed`.
 */
export function replayEvent(
  eventId: string,
  request: OperationsRequest,
  app: Operations,
  clock: { now(): number } = { now: () => Date.now() },
): Promise<EventResponse> {
  return operation(request, async (correlationId) => {
    const { store, queue, config } = deliveryOf(app.runtime());
    const abortSignal = AbortSignal.timeout(OPERATION_TIMEOUT_MS);
    let record = await read(() => store.get(eventId, { abortSignal }));
    for (;;) {
      if (!record) throw notFound(eventId);
      if (record.state !== 'dead_lettered') throw notReplayable(record);
      const replayed: DeliveryRecord | undefined = await read(() =>
        store.update(
          record as DeliveryRecord,
          {
            state: 'queued',
            acceptedAt: new Date(clock.now()).toISOString(),
            nextAttemptAt: null,
            deadLetteredAt: null,
          },
          { abortSignal },
        ),
      );
      if (replayed) {
        try {
          await queue.send({ v: 1, eventId }, { abortSignal });
        } catch (error) {
          // Back to dead_lettered, so that the event is not left queued without a message (best effort).
          const { state, acceptedAt, deadLetteredAt, nextAttemptAt } = record;
          await store.update(replayed, { state, acceptedAt, deadLetteredAt, nextAttemptAt }).catch(() => {});
          throw unavailable(error, 'queued again');
        }
        return acceptedResponse(replayed, request.url, config, correlationId, { preferenceApplied: false });
      }
      record = await read(() => store.get(eventId, { abortSignal }));
    }
  });
}

async function operation(
  request: OperationsRequest,
  run: (correlationId: string) => Promise<EventResponse>,
): Promise<EventResponse> {
  const correlationId = correlationIdFrom(request.headers);
  try {
    return await run(correlationId);
  } catch (error) {
    return problemResponse(asAdapterError(error), correlationId);
  }
}

async function read<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    // The store refusing the request itself (a continuation token this list never gave: 400 invalid_event) is the
    // caller's mistake, not an unavailable store.
    if (isAdapterError(error) && error.status < 500) throw error;
    throw unavailable(error, 'read or written');
  }
}

/** The filter of `?state=&referralId=&top=&continuationToken=`, or `400 invalid_event` naming each bad parameter. */
function listFilter(query: OperationsRequest['query']): DeliveryFilter {
  const errors: FieldError[] = [];
  const bad = (field: string, message: string) => errors.push({ pointer: '', field, code: 'invalid_query', message });
  const filter: DeliveryFilter = { top: DEFAULT_TOP };
  const state = query.get('state');
  if (state !== null) {
    const known = STATE_ALIASES[state] ?? DELIVERY_STATE_VALUES.find((value) => value === state);
    if (known) filter.state = known;
    else
      bad('state', `The state query parameter must be one of ${DELIVERY_STATE_VALUES.join(', ')} (or dead-lettered).`);
  }
  const top = query.get('top');
  if (top !== null) {
    const value = /^\d{1,4}$/.test(top) ? Number(top) : Number.NaN;
    if (value >= 1 && value <= MAX_TOP) filter.top = value;
    else bad('top', `The top query parameter must be a whole number from 1 to ${MAX_TOP}.`);
  }
  const referralId = query.get('referralId');
  if (referralId !== null) {
    if (referralId !== '' && referralId.length <= 128) filter.referralId = referralId;
    else bad('referralId', 'The referralId query parameter must be 1 to 128 characters.');
  }
  const continuationToken = query.get('continuationToken');
  if (continuationToken !== null && continuationToken !== '') filter.continuationToken = continuationToken;
  if (errors.length > 0) {
    const fields = errors.map((error) => error.field).join(', ');
    throw new AdapterError(
      'invalid_event',
      `The query has ${errors.length} invalid parameter${errors.length === 1 ? '' : 's'}: ${fields}.`,
      {
        extensions: { errors },
      },
    );
  }
  return filter;
}

const notFound = (eventId: string) =>
  new AdapterError('event_not_found', `No accepted event has the id "${eventId}".`, { extensions: { eventId } });

function notReplayable(record: DeliveryRecord): AdapterError {
  return new AdapterError(
    'replay_not_allowed',
    `Event "${record.eventId}" is ${record.state}: only a dead_lettered event can be replayed.`,
    { extensions: { state: record.state, eventId: record.eventId, referralId: record.referralId } },
  );
}
