/**
 * The real client's write under `PARTNER_CENTER_WRITE_METHOD` (docs/partner-center-api.md#put-or-patch), on
 * loopback: `put` sends the whole referral, `patch` a JSON Patch with `If-Match` and
 * `Prefer: return=representation`; a `412` is a precondition failure either way; an answer without a body
 * gives its eTag from the `ETag` header, or the referral is read back. Counts and values only.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { makeReferral } from '../../dev/sandbox/seed.js';
import { type PartnerCenterSandbox, startPartnerCenterSandbox } from '../../dev/sandbox/server.js';
import { isAdapterError } from '../../shared/core/errors.js';
import { planUpdate } from '../../shared/core/plan-update.js';
import type { JsonObject } from '../../shared/core/referral.js';
import {
  createPartnerCenterClient,
  type ReferralsClient,
  type RequestContext,
} from '../../shared/partner-center/client.js';
import { closedAfterEach, FIXED_TOKENS } from '../support/client-world.js';
import { testConfig } from '../support/use-cases.js';

const opened = closedAfterEach();

const context: RequestContext = { correlationId: '00000000-0000-4000-8000-000000000002', timeoutMs: 5000 };

function clientFor(url: string, method: 'put' | 'patch'): ReferralsClient {
  const config = testConfig({ PARTNER_CENTER_BASE_URL: url, PARTNER_CENTER_WRITE_METHOD: method });
  const client = createPartnerCenterClient(config.partnerCenter, config.retry, FIXED_TOKENS);
  opened.push(client);
  return client;
}

async function sandboxWorld(method: 'put' | 'patch') {
  const sandbox: PartnerCenterSandbox = await startPartnerCenterSandbox({ seed: false });
  opened.push(sandbox);
  const referral = makeReferral({ status: 'Active', substatus: 'Accepted' });
  delete referral.details;
  sandbox.putReferral(referral);
  const client = clientFor(sandbox.url, method);
  const read = await client.getReferral(String(referral.id), context);
  const plan = planUpdate(String(referral.id), read.referral, { status: 'Closed', substatus: 'Won', notes: 'Signed' });
  if (plan.kind !== 'write') throw new Error('the plan writes');
  sandbox.clearRequests();
  return { sandbox, client, id: String(referral.id), read, plan };
}

describe.each(['put', 'patch'] as const)('PARTNER_CENTER_WRITE_METHOD=%s against the sandbox', (method) => {
  it('writes the planned change with If-Match, and answers the new eTag and referral', async () => {
    const { sandbox, client, id, read, plan } = await sandboxWorld(method);
    expect(client.writeMethod).toBe(method);
    const result = await client.writeReferral(id, plan, read.eTag, context);
    const after = sandbox.getReferral(id);
    expect(after).toMatchObject({ status: 'Closed', substatus: 'Won', details: { notes: 'Signed' } });
    expect(result).toMatchObject({ kind: 'written', eTag: after?.eTag, referral: { status: 'Closed' } });
    expect(sandbox.requests).toHaveLength(1);
    const [request] = sandbox.requests;
    expect(request?.method).toBe(method.toUpperCase());
    expect(request?.headers['if-match']).toBe(read.eTag);
    expect(request?.headers['content-type']).toBe('application/json');
    if (method === 'patch') {
      expect(request?.headers.prefer).toBe('return=representation');
      expect(JSON.parse(request?.body ?? '')).toEqual([
        { op: 'add', path: '/details', value: { notes: 'Signed' } },
        { op: 'replace', path: '/status', value: 'Closed' },
        { op: 'replace', path: '/substatus', value: 'Won' },
      ]);
    } else {
      expect(request?.headers.prefer).toBeUndefined();
      expect(JSON.parse(request?.body ?? '')).toEqual(plan.body);
    }
  });

  it('answers precondition-failed for a stale eTag, and nothing is written', async () => {
    const { sandbox, client, id, read, plan } = await sandboxWorld(method);
    sandbox.editReferral(id, (referral) => {
      referral.name = 'Edited elsewhere';
    });
    const before = sandbox.getReferral(id);
    expect(await client.writeReferral(id, plan, read.eTag, context)).toEqual({
      kind: 'precondition-failed',
      upstreamStatus: 412,
    });
    expect(sandbox.getReferral(id)).toEqual(before);
  });

  it('throws upstream_rejected when the sandbox refuses the write (400), naming the method', async () => {
    const { client, id, read } = await sandboxWorld(method);
    const bad = {
      body: { ...read.referral, id: 'another' },
      operations: [{ op: 'replace' as const, path: '/id', value: 'x' }],
    };
    const error = await client.writeReferral(id, bad, read.eTag, context).catch((e: unknown) => e);
    expect(isAdapterError(error) && error.code).toBe('upstream_rejected');
    expect(isAdapterError(error) && error.message).toContain(`answered ${method.toUpperCase()} with 400`);
  });
});

/** A Partner Center that answers PATCH with 204 and no body (as without `Prefer`), with or without `ETag`. */
async function bodylessService(withETag: boolean) {
  const seen: string[] = [];
  const referral: JsonObject = { id: 'r1', status: 'Active', substatus: 'Accepted', eTag: '"1"' };
  const server: Server = createServer((req: IncomingMessage, res) => {
    seen.push(req.method ?? '');
    req.resume();
    req.on('end', () => {
      if (req.method === 'PATCH') {
        referral.eTag = '"2"';
        res.writeHead(204, withETag ? { etag: '"2"' } : {});
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(referral));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  opened.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen };
}

describe('PATCH answered without a body', () => {
  const write = { body: {}, operations: [{ op: 'replace' as const, path: '/name', value: 'x' }] };

  it('takes the new eTag from the ETag header, with no further call', async () => {
    const { url, seen } = await bodylessService(true);
    const client = clientFor(url, 'patch');
    expect(await client.writeReferral('r1', write, '"1"', context)).toEqual({
      kind: 'written',
      referral: undefined,
      eTag: '"2"',
    });
    expect(seen).toEqual(['PATCH']);
  });

  it('without an ETag header, reads the referral back for its eTag', async () => {
    const { url, seen } = await bodylessService(false);
    const client = clientFor(url, 'patch');
    expect(await client.writeReferral('r1', write, '"1"', context)).toMatchObject({
      kind: 'written',
      referral: { id: 'r1', eTag: '"2"' },
      eTag: '"2"',
    });
    expect(seen).toEqual(['PATCH', 'GET']);
  });
});
