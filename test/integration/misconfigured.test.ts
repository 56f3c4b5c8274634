/**
 * A wrong setting is reported at start-up, by /api/health, and by every event, and nothing is sent
 * anywhere; GET /api/openapi.json still answers, and the misconfigured answers conform to the response
 * schemas and to both published documents. The handlers are called directly with the library's own
 * HttpRequest/InvocationContext (the local host refuses to start with invalid settings).
 */
import { readFileSync } from 'node:fs';
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { buildOpenApiDocument } from '../../shared/contract/openapi.js';
import { healthReportSchema, problemSchema } from '../../shared/contract/responses.js';
import { openApi31Check, pointer, swagger20Check } from '../support/documents.js';
import { REPO_ROOT } from '../support/stack.js';

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;
let health: Handler;
let referralUpdates: Handler;
let openapi: Handler;
let azf: typeof import('@azure/functions');
const startupLog: string[] = [];

beforeAll(async () => {
  process.env.PARTNER_CENTER_BASE_URL = 'http://partner.example.test';
  process.env.UPSTREAM_MAX_RETRIES = '99';
  // Fails closed: not a method the app may guess at.
  process.env.PARTNER_CENTER_WRITE_METHOD = 'PATCH';
  // A list that comes out empty (a Key Vault reference resolving to blanks) is a problem, never "signatures off".
  process.env.WEBHOOK_SECRETS = ' , ';
  const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    startupLog.push(args.join(' '));
  });
  azf = (await import('@azure/functions')).default;
  ({ health } = await import('../../functions/health.js'));
  ({ referralUpdates } = await import('../../functions/referral-updates.js'));
  ({ openapi } = await import('../../functions/openapi.js'));
  spy.mockRestore();
});
afterAll(() => {
  delete process.env.PARTNER_CENTER_BASE_URL;
  delete process.env.UPSTREAM_MAX_RETRIES;
  delete process.env.PARTNER_CENTER_WRITE_METHOD;
  delete process.env.WEBHOOK_SECRETS;
});

const context = () => new azf.InvocationContext({ functionName: 'test', invocationId: 'test', logHandler: () => {} });
const document = buildOpenApiDocument();
const check31 = openApi31Check(document);

it('logs the problems when the app loads', () => {
  expect(startupLog.join('\n')).toContain('PARTNER_CENTER_BASE_URL must use https');
  expect(startupLog.join('\n')).toContain('UPSTREAM_MAX_RETRIES must be an integer from 0 to 10');
  expect(startupLog.join('\n')).toContain('PARTNER_CENTER_WRITE_METHOD must be put or patch');
  expect(startupLog.join('\n')).toContain('WEBHOOK_SECRETS is set but holds no secret');
});

it('GET /api/health answers 503 with every problem, as documented', async () => {
  const response = await health(new azf.HttpRequest({ method: 'GET', url: 'http://127.0.0.1/api/health' }), context());
  expect(response.status).toBe(503);
  const body = JSON.parse(String(response.body));
  expect(body).toMatchObject({
    status: 'misconfigured',
    partnerCenter: null,
    auth: null,
    signatures: null,
    problems: [
      expect.stringContaining('PARTNER_CENTER_BASE_URL'),
      expect.stringContaining('PARTNER_CENTER_WRITE_METHOD'),
      expect.stringContaining('UPSTREAM_MAX_RETRIES'),
      expect.stringContaining('WEBHOOK_SECRETS'),
    ],
  });
  expect(healthReportSchema.safeParse(body).error?.issues ?? []).toEqual([]);
  expect(
    check31(pointer('paths', '/health', 'get', 'responses', '503', 'content', 'application/json', 'schema'), body),
  ).toEqual([]);
});

it('every event answers 500 configuration_invalid, as documented', async () => {
  const request = new azf.HttpRequest({
    method: 'POST',
    url: 'http://127.0.0.1/api/referral-updates',
    headers: { 'content-type': 'application/json' },
    body: { string: JSON.stringify({ referralId: 'r1', status: 'Active' }) },
  });
  const response = await referralUpdates(request, context());
  expect(response.status).toBe(500);
  expect((response.headers as Record<string, string>)['content-type']).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(String(response.body));
  expect(body).toMatchObject({
    code: 'configuration_invalid',
    retryable: false,
    problems: [
      expect.stringContaining('PARTNER_CENTER_BASE_URL'),
      expect.stringContaining('PARTNER_CENTER_WRITE_METHOD'),
      expect.stringContaining('UPSTREAM_MAX_RETRIES'),
      expect.stringContaining('WEBHOOK_SECRETS'),
    ],
  });
  expect(problemSchema.safeParse(body).error?.issues ?? []).toEqual([]);
  const at = pointer('paths', '/referral-updates', 'post', 'responses', '500');
  expect(check31(`${at}${pointer('content', 'application/problem+json', 'schema')}`, body)).toEqual([]);
  const check20 = swagger20Check(JSON.parse(readFileSync(`${REPO_ROOT}connector/apiDefinition.swagger.json`, 'utf8')));
  expect(check20(`${at}/schema`, body)).toEqual([]);
});

it('GET /api/openapi.json answers without valid settings', async () => {
  const response = await openapi(
    new azf.HttpRequest({ method: 'GET', url: 'http://127.0.0.1/api/openapi.json' }),
    context(),
  );
  expect(response.status).toBe(200);
  expect((response.headers as Record<string, string>)['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(String(response.body))).toEqual(document);
});
