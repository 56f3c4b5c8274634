/**
 * The scripted fake (test/support/scripted-partner-center.ts) keeps in step with the real client: for
 * the same upstream answer, both give the same result or the same error (code, status, Retry-After).
 * The real client talks to a loopback HTTP server that gives each answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenProvider } from '../../shared/auth/token-provider.js';
import { AdapterError } from '../../shared/core/errors.js';
import { createPartnerCenterClient, type PartnerCenterClient } from '../../shared/partner-center/client.js';
import { GET, type NetworkFailure, PUT, ScriptedPartnerCenter, type Step } from '../support/scripted-partner-center.js';
import { referral, testConfig } from '../support/use-cases.js';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

let server: Server;
let origin: string;
let answer: Handler = (_q, s) => s.end();
let settings: ReturnType<typeof testConfig>;

const tokens: TokenProvider = {
  getToken: async () => 'test-token',
  invalidate: () => {},
  health: () => Promise.reject(new Error('not used')),
};

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => answer(request, response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  settings = testConfig({ PARTNER_CENTER_BASE_URL: origin, UPSTREAM_REQUEST_TIMEOUT_MS: '200' });
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

const context = { correlationId: '00000000-0000-4000-8000-000000000001', timeoutMs: 100 };
const held = referral({ eTag: '"e1"' });

/** The error (as plain data) or result of one call. */
async function outcome(call: () => Promise<unknown>): Promise<unknown> {
  try {
    const result = await call();
    return { result: (result as { kind?: string }).kind ?? 'read' };
  } catch (error) {
    if (!(error instanceof AdapterError)) throw error;
    const { code, status, retryable, retryAfterSeconds, upstreamStatus } = error;
    return { code, status, retryable, retryAfterSeconds, upstreamStatus };
  }
}

/** The fake after its script reached `step` (a PUT needs a held referral first). */
async function fakeOutcome(method: 'GET' | 'PUT', step: Step): Promise<unknown> {
  if (method === 'GET') {
    const fake = new ScriptedPartnerCenter([step]);
    return outcome(() => fake.getReferral('r1', context));
  }
  const fake = new ScriptedPartnerCenter([GET.ok(held), step]);
  await fake.getReferral('r1', context);
  return outcome(() => fake.putReferral('r1', held, '"e1"', context));
}

/**
 * The real client's result for one call. A fresh client each time: a 429 with Retry-After pauses the calls of
 * the client that received it (docs/partner-center-api.md#throttling-and-retries), which the next case must not inherit.
 */
async function realOutcome(method: 'GET' | 'PUT'): Promise<unknown> {
  const real: PartnerCenterClient = createPartnerCenterClient(settings.partnerCenter, settings.retry, tokens);
  try {
    return await outcome(() =>
      method === 'GET' ? real.getReferral('r1', context) : real.putReferral('r1', held, '"e1"', context),
    );
  } finally {
    await real.close();
  }
}

describe('HTTP statuses', () => {
  const cases: Array<[method: 'GET' | 'PUT', status: number, retryAfter?: number]> = [
    ['GET', 404],
    ['GET', 400],
    ['GET', 403],
    ['GET', 429, 7],
    ['GET', 503, 2],
    ['GET', 500],
    ['GET', 502],
    ['GET', 504],
    ['PUT', 412],
    ['PUT', 409],
    ['PUT', 400],
    ['PUT', 429, 5],
    ['PUT', 500],
  ];
  it.each(cases)('%s answered %i', async (method, status, retryAfter) => {
    answer = (_q, s) => {
      s.writeHead(status, {
        'content-type': 'application/json',
        ...(retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }),
      });
      s.end(JSON.stringify({ error: { code: 'Scripted', message: 'scripted' } }));
    };
    const options = retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter };
    const step = method === 'GET' ? GET.status(status, options) : PUT.status(status, options);

    expect(await fakeOutcome(method, step)).toEqual(await realOutcome(method));
  });

  it('GET 200 and PUT 200', async () => {
    answer = (_q, s) => {
      s.writeHead(200, { 'content-type': 'application/json' });
      s.end(JSON.stringify(held));
    };
    expect(await fakeOutcome('GET', GET.ok(held))).toEqual(await realOutcome('GET'));
    expect(await fakeOutcome('PUT', PUT.ok())).toEqual(await realOutcome('PUT'));
  });
});

describe('no answer', () => {
  const failures: Array<[NetworkFailure, Handler]> = [
    ['reset', (q) => q.socket.destroy()],
    ['timeout', () => {}],
  ];
  it.each(failures)('%s', async (failure, handler) => {
    answer = handler;
    expect(await fakeOutcome('GET', GET.network(failure))).toEqual(await realOutcome('GET'));
    expect(await fakeOutcome('PUT', PUT.lost({ landed: false, via: failure }))).toEqual(await realOutcome('PUT'));
  });

  it('refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const config = testConfig({ PARTNER_CENTER_BASE_URL: `http://127.0.0.1:${port}` });
    const nowhere = createPartnerCenterClient(config.partnerCenter, config.retry, tokens);
    try {
      expect(await fakeOutcome('GET', GET.network('refused'))).toEqual(
        await outcome(() => nowhere.getReferral('r1', context)),
      );
    } finally {
      await nowhere.close();
    }
  });
});

describe('the real client: Partner Center refusing a token without MFA (error 900421)', () => {
  it.each([401, 403])('%i with error 900421 → 502 mfa_required, not retryable', async (status) => {
    answer = (_q, s) => {
      s.writeHead(status, { 'content-type': 'application/json' });
      s.end(JSON.stringify({ error: { code: '900421', message: 'MFA is required.' } }));
    };
    expect(await realOutcome('GET')).toMatchObject({ code: 'mfa_required', status: 502, retryable: false });
  });
});
