/**
 * What the asynchronous use cases share (docs/async-delivery.md): the settings they read, the routes of the
 * status URL and of the operations, the status id (`base64url(eventId).token`), the `202` that points at the
 * status URL, and an event's summary without customer values.
 */
import { timingSafeEqual } from 'node:crypto';
import type { DeliveryConfig } from '../config.js';
import { type Accepted, ASYNC_HEADERS, type DeliverySummary, RESPOND_ASYNC } from '../contract/async.js';
import { RESPONSE_HEADERS } from '../contract/headers.js';
import type { DeliveryRecord, DeliveryStore, EventQueue } from '../delivery/store.js';
import { jsonResponse } from '../http/response.js';
import type { EventResponse } from './process-event.js';

/** The settings of asynchronous delivery the use cases read: the configuration's, but the queue's connection. */
export type AsyncDeliverySettings = Omit<DeliveryConfig, 'queue' | 'poisonQueueName'>;

/** The deliveries store, the queue and their settings; absent when the app runs on the memory store. */
export interface DeliveryRuntime {
  store: DeliveryStore;
  queue: EventQueue;
  config: AsyncDeliverySettings;
}

/** The Functions host's route prefix (host.json `extensions.http.routePrefix`, default `api`). */
const ROUTE_PREFIX = '/api';
/** Route of the status URL (functions/referral-update-status.ts), under {@link ROUTE_PREFIX}. */
export const STATUS_ROUTE = 'referral-updates/status';
/** Route of the operations on accepted events (functions/referral-update-events.ts), under {@link ROUTE_PREFIX}. */
export const EVENTS_ROUTE = 'referral-updates/events';

/** `base64url(utf8 eventId) + "." + token`: what the status URL carries. */
export function statusIdOf(record: Pick<DeliveryRecord, 'eventId' | 'token'>): string {
  return `${Buffer.from(record.eventId, 'utf8').toString('base64url')}.${record.token}`;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The event id and token of a status id, or undefined when it is malformed. */
export function parseStatusId(statusId: string): { eventId: string; token: string } | undefined {
  const dot = statusId.indexOf('.');
  if (dot <= 0 || dot !== statusId.lastIndexOf('.')) return undefined;
  const encoded = statusId.slice(0, dot);
  const token = statusId.slice(dot + 1);
  if (!BASE64URL.test(encoded) || !BASE64URL.test(token) || statusId.length > 1024) return undefined;
  const eventId = Buffer.from(encoded, 'base64url').toString('utf8');
  // Only the canonical encoding of well-formed text names an event.
  if (eventId === '' || Buffer.from(eventId, 'utf8').toString('base64url') !== encoded) return undefined;
  return { eventId, token };
}

/** Whether `given` is the record's token, compared in constant time. */
export function tokenMatches(record: Pick<DeliveryRecord, 'token'>, given: string): boolean {
  const expected = Buffer.from(record.token, 'utf8');
  const actual = Buffer.from(given, 'utf8');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** The absolute status URL: the origin of the request that accepted (or replayed) the event, the route prefix, the status id. */
export function statusUrlOf(requestUrl: string, record: Pick<DeliveryRecord, 'eventId' | 'token'>): string {
  return `${new URL(requestUrl).origin}${ROUTE_PREFIX}/${STATUS_ROUTE}/${statusIdOf(record)}`;
}

/** The path to replay a dead-lettered event (function key). */
export function replayPathOf(eventId: string): string {
  return `${ROUTE_PREFIX}/${EVENTS_ROUTE}/${encodeURIComponent(eventId)}/replay`;
}

/**
 * The `202` of an accepted (or replayed) event: `Location`, `Retry-After`, the accepted body, and
 * `Preference-Applied` when the request asked for `respond-async` (a replay asks for nothing: RFC 7240).
 */
export function acceptedResponse(
  record: Pick<DeliveryRecord, 'eventId' | 'referralId' | 'token'>,
  requestUrl: string,
  settings: Pick<AsyncDeliverySettings, 'pollSeconds'>,
  correlationId: string,
  { preferenceApplied = true }: { preferenceApplied?: boolean } = {},
): EventResponse {
  const statusUrl = statusUrlOf(requestUrl, record);
  const body: Accepted = { referralId: record.referralId, eventId: record.eventId, state: 'queued', statusUrl };
  return jsonResponse(202, body, correlationId, {
    [ASYNC_HEADERS.location]: statusUrl,
    [RESPONSE_HEADERS.retryAfter]: String(settings.pollSeconds),
    ...(preferenceApplied ? { [ASYNC_HEADERS.preferenceApplied]: RESPOND_ASYNC } : {}),
  });
}

/** An accepted event as the operations list it: ids, state, times, codes and changed paths; never the event or its answer. */
export function summaryOf(record: DeliveryRecord): DeliverySummary {
  return {
    eventId: record.eventId,
    referralId: record.referralId,
    state: record.state,
    attempts: record.attempts,
    acceptedAt: record.acceptedAt,
    lastAttemptAt: record.lastAttemptAt,
    nextAttemptAt: record.nextAttemptAt,
    deadLetteredAt: record.deadLetteredAt,
    lastError: record.lastError && { code: record.lastError.code, status: record.lastError.status },
    changedPaths: record.changedPaths,
  };
}
