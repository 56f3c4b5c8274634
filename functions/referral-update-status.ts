/**
 * GET /api/referral-updates/status/{statusId} (anonymous: the status id carries the event's own token): where an
 * event accepted with `202` is, or its final answer (docs/async-delivery.md#status-url).
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { APP } from '../shared/runtime.js';
import { STATUS_ROUTE } from '../shared/use-cases/async-delivery.js';
import { eventStatus } from '../shared/use-cases/event-status.js';

export async function referralUpdateStatus(
  request: HttpRequest,
  _context: InvocationContext,
): Promise<HttpResponseInit> {
  const { status, headers, body } = await eventStatus(
    { statusId: request.params.statusId ?? '', url: request.url, headers: request.headers },
    APP,
  );
  return { status, headers, body };
}

app.http('referral-update-status', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: `${STATUS_ROUTE}/{statusId}`,
  handler: referralUpdateStatus,
});
