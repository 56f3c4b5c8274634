/**
 * GET /api/stages (function key): the CRM stages STAGE_MAP maps and their targets (docs/stages.md), the
 * connector's Stage dropdown. `function` level, so the connection's host key opens it like the POST
 * (docs/power-automate.md#2-the-key-and-the-connection).
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { correlationIdFrom } from '../shared/http/inbound.js';
import { asAdapterError, jsonResponse, problemResponse } from '../shared/http/response.js';
import { getRuntime } from '../shared/runtime.js';
import { listStages } from '../shared/use-cases/list-stages.js';

export async function stages(request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  const correlationId = correlationIdFrom(request.headers);
  try {
    return jsonResponse(200, listStages(getRuntime()), correlationId);
  } catch (error) {
    // The settings are invalid: 500 configuration_invalid, naming every problem (as /api/health does).
    return problemResponse(asAdapterError(error), correlationId);
  }
}

app.http('stages', { methods: ['GET'], authLevel: 'function', route: 'stages', handler: stages });
