/**
 * A wrong setting is reported at start-up, by /api/health, and by every event, and nothing is sent
 * anywhere. The handlers are called directly with the library's own HttpRequest/InvocationContext.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;
let health: Handler;
let referralUpdates: Handler;
let azf: typeof import('@azure/functions');
const startupLog: string[] = [];

beforeAll(async () => {
  process.env.PARTNER_CENTER_BASE_URL = 'http://partner.example.test';
  process.env.UPSTREAM_MAX_RETRIES = '99';
  const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    startupLog.push(args.join(' '));
  });
  azf = (await import('@azure/functions')).default;
  ({ health } = await import('../../functions/health.js'));
  ({ referralUpdates } = await import('../../functions/referral-updates.js'));
  spy.mockRestore();
});
afterAll(() => {
  delete process.env.PARTNER_CENTER_BASE_URL;
  delete process.env.UPSTREAM_MAX_RETRIES;
});

const context = () => new azf.InvocationContext({ functionName: 'test', invocationId: 'test', logHandler: () => {} });

it('logs the problems when the app loads', () => {
  expect(startupLog.join('\n')).toContain('PARTNER_CENTER_BASE_URL must use https');
  expect(startupLog.join('\n')).toContain('UPSTREAM_MAX_RETRIES must be an integer from 0 to 10');
});

it('GET /api/health answers 503 with every problem', async () => {
  const response = await health(new azf.HttpRequest({ method: 'GET', url: 'http://127.0.0.1/api/health' }), context());
  expect(response.status).toBe(503);
  expect(JSON.parse(String(response.body))).toMatchObject({
    status: 'misconfigured',
    problems: [expect.stringContaining('PARTNER_CENTER_BASE_URL'), expect.stringContaining('UPSTREAM_MAX_RETRIES')],
  });
});

it('every event answers 500 configuration_invalid', async () => {
  const request = new azf.HttpRequest({
    method: 'POST',
    url: 'http://127.0.0.1/api/referral-updates',
    headers: { 'content-type': 'application/json' },
    body: { string: JSON.stringify({ referralId: 'r1', status: 'Active' }) },
  });
  const response = await referralUpdates(request, context());
  expect(response.status).toBe(500);
  expect((response.headers as Record<string, string>)['content-type']).toMatch(/^application\/problem\+json/);
  expect(JSON.parse(String(response.body))).toMatchObject({ code: 'configuration_invalid', retryable: false });
});
