/**
 * POST /api/referral-updates (function key): apply one update event to one Partner Center referral.
 * Parse the trigger, run the use case, map its answer to HTTP. The rules live in shared/.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { APP, checkConfigurationAtStartup, startAppTelemetryInBackground } from '../shared/runtime.js';
import { processEvent } from '../shared/use-cases/process-event.js';

export async function referralUpdates(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { status, headers, body } = await processEvent(request, context, APP);
  return { status, headers, body };
}

checkConfigurationAtStartup();
// Application Insights, when configured, starts in the background with the worker; no event waits for it.
startAppTelemetryInBackground();

app.http('referral-updates', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'referral-updates',
  handler: referralUpdates,
});
