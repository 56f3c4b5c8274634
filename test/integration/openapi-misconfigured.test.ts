/**
 * With invalid settings (the local host refuses to start then, so the handlers are called directly, as in
 * misconfigured.test.ts): GET /api/openapi.json still answers, and the misconfigured answers of health and
 * of an event conform to the response schemas and to both documents.
 */
import { readFileSync } from 'node:fs';
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { buildOpenApiDocument } from '../../shared/openapi.js';
import { healthReportSchema, problemSchema } from '../../shared/response-contract.js';
import { openApi31Check, pointer, swagger20Check } from '../support/documents.js';
import { REPO_ROOT } from '../support/stack.js';

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;
let openapi: Handler;
let health: Handler;
let referralUpdates: Handler;
let azf: typeof import('@azure/functions');

beforeAll(async () => {
  process.env.PARTNER_CENTER_BASE_URL = 'http://partner.example.test';
  const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
  azf = (await import('@azure/functions')).default;
  ({ openapi } = await import('../../functions/openapi.js'));
  ({ health } = await import('../../functions/health.js'));
  ({ referralUpdates } = await import('../../functions/referral-updates.js'));
  spy.mockRestore();
});
afterAll(() => {
  delete process.env.PARTNER_CENTER_BASE_URL;
});

const context = () => new azf.InvocationContext({ functionName: 'test', invocationId: 'test', logHandler: () => {} });
const document = buildOpenApiDocument();
const check31 = openApi31Check(document);

it('GET /api/openapi.json answers without valid settings', async () => {
  const response = await openapi(
    new azf.HttpRequest({ method: 'GET', url: 'http://127.0.0.1/api/openapi.json' }),
    context(),
  );
  expect(response.status).toBe(200);
  expect((response.headers as Record<string, string>)['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(String(response.body))).toEqual(document);
});

it('GET /api/health: 503 misconfigured conforms', async () => {
  const response = await health(new azf.HttpRequest({ method: 'GET', url: 'http://127.0.0.1/api/health' }), context());
  expect(response.status).toBe(503);
  const body = JSON.parse(String(response.body));
  expect(healthReportSchema.safeParse(body).error?.issues ?? []).toEqual([]);
  expect(body).toMatchObject({ status: 'misconfigured', partnerCenter: null, auth: null });
  expect(
    check31(pointer('paths', '/health', 'get', 'responses', '503', 'content', 'application/json', 'schema'), body),
  ).toEqual([]);
});

it('an event: 500 configuration_invalid conforms', async () => {
  const request = new azf.HttpRequest({
    method: 'POST',
    url: 'http://127.0.0.1/api/referral-updates',
    headers: { 'content-type': 'application/json' },
    body: { string: JSON.stringify({ referralId: 'r1', status: 'Active' }) },
  });
  const response = await referralUpdates(request, context());
  expect(response.status).toBe(500);
  const body = JSON.parse(String(response.body));
  expect(problemSchema.safeParse(body).error?.issues ?? []).toEqual([]);
  expect(body).toMatchObject({
    code: 'configuration_invalid',
    problems: [expect.stringContaining('PARTNER_CENTER_BASE_URL')],
  });
  const at = pointer('paths', '/referral-updates', 'post', 'responses', '500');
  expect(check31(`${at}${pointer('content', 'application/problem+json', 'schema')}`, body)).toEqual([]);
  const check20 = swagger20Check(JSON.parse(readFileSync(`${REPO_ROOT}connector/apiDefinition.swagger.json`, 'utf8')));
  expect(check20(`${at}/schema`, body)).toEqual([]);
});
