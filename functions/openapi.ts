/**
 * GET /api/openapi.json (anonymous): the OpenAPI 3.1 document of contract v1, generated from the same zod
 * schemas that validate the requests. Built once per process on the first request, and its module (with the
 * response schemas) loaded then, not at load (docs/performance.md); needs no settings (it answers even when
 * the Partner Center configuration is invalid).
 */
import { createHash } from 'node:crypto';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

let etag: string | undefined;

export async function openapi(request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  const { openApiJson } = await import('../shared/contract/openapi.js');
  const body = openApiJson();
  etag ??= `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  const headers = { etag, 'cache-control': 'public, max-age=300' };
  if (request.headers.get('if-none-match') === etag) return { status: 304, headers };
  return { status: 200, headers: { ...headers, 'content-type': 'application/json; charset=utf-8' }, body };
}

app.http('openapi', { methods: ['GET'], authLevel: 'anonymous', route: 'openapi.json', handler: openapi });
