/** GET /api/health (anonymous): version, upstream target, token state and configuration problems. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { healthReport } from '../shared/health.js';
import { jsonResponse } from '../shared/http/response.js';

export async function health(_request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  const report = await healthReport();
  return jsonResponse(report.status === 'misconfigured' ? 503 : 200, report);
}

app.http('health', { methods: ['GET'], authLevel: 'anonymous', route: 'health', handler: health });
