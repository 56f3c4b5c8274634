/**
 * Operations on accepted events (function key; docs/async-delivery.md#operations): list them by state and
 * referral, read one, replay a dead-lettered one.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { APP } from '../shared/runtime.js';
import { EVENTS_ROUTE } from '../shared/use-cases/async-delivery.js';
import { getEvent, listEvents, replayEvent } from '../shared/use-cases/event-operations.js';
import type { EventResponse } from '../shared/use-cases/process-event.js';

const toHttp = ({ status, headers, body }: EventResponse): HttpResponseInit => ({ status, headers, body });

/** GET /api/referral-updates/events */
export async function referralUpdateEvents(
  request: HttpRequest,
  _context: InvocationContext,
): Promise<HttpResponseInit> {
  return toHttp(await listEvents(request, APP));
}

/** GET /api/referral-updates/events/{eventId} */
export async function referralUpdateEvent(
  request: HttpRequest,
  _context: InvocationContext,
): Promise<HttpResponseInit> {
  return toHttp(await getEvent(request.params.eventId ?? '', request, APP));
}

/** POST /api/referral-updates/events/{eventId}/replay */
export async function referralUpdateReplay(
  request: HttpRequest,
  _context: InvocationContext,
): Promise<HttpResponseInit> {
  return toHttp(await replayEvent(request.params.eventId ?? '', request, APP));
}

app.http('referral-update-events', {
  methods: ['GET'],
  authLevel: 'function',
  route: EVENTS_ROUTE,
  handler: referralUpdateEvents,
});
app.http('referral-update-event', {
  methods: ['GET'],
  authLevel: 'function',
  route: `${EVENTS_ROUTE}/{eventId}`,
  handler: referralUpdateEvent,
});
app.http('referral-update-replay', {
  methods: ['POST'],
  authLevel: 'function',
  route: `${EVENTS_ROUTE}/{eventId}/replay`,
  handler: referralUpdateReplay,
});
