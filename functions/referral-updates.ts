/**
 * POST /api/referral-updates (function key): apply one update event to one Partner Center referral.
 * Parse the trigger, run the use case, map the result to HTTP. The rules live in shared/.
 */
import { performance } from 'node:perf_hooks';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import type { AdapterError } from '../shared/errors.js';
import { eventIdFromHeaders, parseUpdateEvent, type UpdateEvent } from '../shared/event-contract.js';
import { logEventSummary } from '../shared/event-log.js';
import { asAdapterError, jsonResponse, problemResponse } from '../shared/http-response.js';
import { correlationIdFrom, readJsonBody } from '../shared/inbound.js';
import { checkConfigurationAtStartup, getRuntime } from '../shared/runtime.js';
import { newStats, type UpdateResult, updateReferral } from '../shared/update-referral.js';

export async function referralUpdates(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const started = performance.now();
  const correlationId = correlationIdFrom(request.headers);
  const stats = newStats();
  let event: UpdateEvent | undefined;
  let outcome: { ok: UpdateResult } | { error: AdapterError };
  try {
    const runtime = getRuntime();
    event = parseUpdateEvent(await readJsonBody(request), {
      headerEventId: eventIdFromHeaders(request.headers),
      dryRunQuery: request.query.get('dryRun'),
    });
    const deps = { client: runtime.client, retry: runtime.config.retry };
    outcome = { ok: await updateReferral(event, deps, correlationId, stats) };
  } catch (error) {
    outcome = { error: asAdapterError(error) };
  }
  const summary = {
    correlationId,
    referralId: event?.referralId,
    eventId: event?.eventId,
    stats,
    durationMs: performance.now() - started,
  };
  logEventSummary(context, summary, outcome);
  return 'ok' in outcome ? jsonResponse(200, outcome.ok, correlationId) : problemResponse(outcome.error, correlationId);
}

checkConfigurationAtStartup();

app.http('referral-updates', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'referral-updates',
  handler: referralUpdates,
});
