/**
 * A bad STAGE_MAP is a configuration problem like any other (#14): /api/health answers 503 naming each bad
 * entry, and GET /api/stages answers configuration_invalid. The handlers are called directly with the
 * library's own HttpRequest/InvocationContext (the local host refuses to start with invalid settings).
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { healthReportSchema, problemSchema } from '../../shared/contract/responses.js';

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;
let health: Handler;
let stages: Handler;
let azf: typeof import('@azure/functions');

beforeAll(async () => {
  process.env.IDEMPOTENCY_STORE = 'memory';
  process.env.STAGE_MAP = '{"Closed Won": "Closed/Won", " CLOSED WON": "Won", "Qualify": "Closed"}';
  const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
  azf = (await import('@azure/functions')).default;
  ({ health } = await import('../../functions/health.js'));
  ({ stages } = await import('../../functions/stages.js'));
  spy.mockRestore();
});
afterAll(() => {
  delete process.env.IDEMPOTENCY_STORE;
  delete process.env.STAGE_MAP;
});

const context = () => new azf.InvocationContext({ functionName: 'test', invocationId: 'test', logHandler: () => {} });

it('GET /api/health: misconfigured, with one problem per bad entry, each naming it', async () => {
  const response = await health(new azf.HttpRequest({ method: 'GET', url: 'http://127.0.0.1/api/health' }), context());
  expect(response.status).toBe(503);
  const body = healthReportSchema.parse(JSON.parse(String(response.body)));
  expect(body.problems).toEqual([
    'STAGE_MAP entry " CLOSED WON": the same stage as "Closed Won" (case and surrounding whitespace are ignored)',
    'STAGE_MAP entry "Qualify": Closed needs a substatus: Closed/Won, Closed/Lost, Closed/Declined or Closed/Expired',
  ]);
});

it('GET /api/stages: 500 configuration_invalid with the same problems', async () => {
  const response = await stages(new azf.HttpRequest({ method: 'GET', url: 'http://127.0.0.1/api/stages' }), context());
  expect(response.status).toBe(500);
  const body = problemSchema.parse(JSON.parse(String(response.body)));
  expect(body).toMatchObject({ code: 'configuration_invalid' });
  expect(String(body.detail)).toContain('STAGE_MAP entry "Qualify"');
});
