/**
 * Table round trips per event (docs/ordering.md#what-it-costs): the real Table store on Azurite, every request
 * counted by a loopback proxy in front of Azurite's Table service. Counts, never timings. The first event of
 * each app creates its table and is not counted.
 */
import { randomUUID } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../shared/core/referral.js';
import { createTableDeliveryStore } from '../../shared/delivery/table-store.js';
import { createTableIdempotencyStore } from '../../shared/idempotency/table-store.js';
import type { PartnerCenterClient } from '../../shared/partner-center/client.js';
import { deliver, referral, testApp } from '../support/use-cases.js';

interface CountingProxy {
  connectionString: string;
  /** `METHOD path` of every request forwarded, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** A loopback reverse proxy in front of the Table endpoint of `connectionString`. */
async function countingProxy(connectionString: string): Promise<CountingProxy> {
  const endpoint = /TableEndpoint=([^;]+)/.exec(connectionString)?.[1];
  if (!endpoint) throw new Error('no TableEndpoint in AzureWebJobsStorage');
  const target = new URL(endpoint);
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${decodeURIComponent(req.url ?? '')}`);
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const proxied = new URL(endpoint);
  proxied.port = String(port);
  return {
    connectionString: connectionString.replace(endpoint, proxied.toString().replace(/\/$/, '')),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Partner Center in memory: a GET answers the referral, a PUT replaces it; `gate` holds the next GET. */
function memoryPartnerCenter(): PartnerCenterClient & { gate?: Promise<unknown>; gets: number } {
  const referrals = new Map<string, { referral: JsonObject; eTag: string }>();
  let version = 0;
  const self: PartnerCenterClient & { gate?: Promise<unknown>; gets: number } = {
    gets: 0,
    async getReferral(id) {
      self.gets++;
      const gate = self.gate;
      delete self.gate;
      await gate;
      const held = referrals.get(id) ?? { referral: referral({ id }), eTag: `"v${++version}"` };
      referrals.set(id, held);
      return structuredClone(held);
    },
    async putReferral(id, body) {
      const eTag = `"v${++version}"`;
      referrals.set(id, { referral: structuredClone(body), eTag });
      return { kind: 'written', referral: body, eTag };
    },
    writeReferral(id, write, eTag, context) {
      return this.putReferral(id, write.body, eTag, context);
    },
    async close() {},
  };
  return self;
}

let proxy: CountingProxy;

beforeAll(async () => {
  const storage = process.env.AzureWebJobsStorage;
  if (!storage) throw new Error('AzureWebJobsStorage is set by test/support/global-setup.ts');
  proxy = await countingProxy(storage);
});

afterAll(() => proxy?.close());

describe('Table round trips per event (real Table store, Azurite)', () => {
  const app = () => {
    const store = createTableIdempotencyStore({
      store: 'table',
      retentionSeconds: 3600,
      waitMs: 1000,
      tableName: `t${randomUUID().replaceAll('-', '')}`,
      connection: { connectionString: proxy.connectionString },
    });
    const partnerCenter = memoryPartnerCenter();
    return Object.assign(testApp(partnerCenter, { idempotency: store }), { partnerCenter });
  };

  /** The requests one delivery makes, once the table exists. */
  async function roundTrips(
    target: ReturnType<typeof app>,
    body: JsonObject,
    headers: Record<string, string> = {},
    query: Record<string, string> = {},
  ) {
    const before = proxy.requests.length;
    const answered = await deliver(target, { body, headers, query });
    expect(answered.status, answered.body).toBe(200);
    return proxy.requests.slice(before);
  }

  it('an event with an id: 2 (the claim, the stored answer); its redelivery: 2 (the refused insert, the read of the stored answer)', async () => {
    const target = app();
    await roundTrips(target, { referralId: 'ref-warm', notes: 'x' }, { 'webhook-id': randomUUID() }); // creates the table
    const id = randomUUID();
    const first = await roundTrips(target, { referralId: 'ref-a', notes: 'a' }, { 'webhook-id': id });
    expect(first, first.join('\n')).toHaveLength(2);
    const again = await roundTrips(target, { referralId: 'ref-a', notes: 'a' }, { 'webhook-id': id });
    expect(again.length, again.join('\n')).toBe(2);
  });

  it('an event with an id and occurredAt: 5 (claim, ordering read, ordering claim, confirmation, stored answer), the record read once', async () => {
    const target = app();
    await roundTrips(target, { referralId: 'ref-warm', notes: 'x' }, { 'webhook-id': randomUUID() });
    const occurredAt = new Date().toISOString();
    const first = await roundTrips(
      target,
      { referralId: 'ref-b', notes: 'b', occurredAt },
      { 'webhook-id': randomUUID() },
    );
    expect(first, first.join('\n')).toHaveLength(5);
    const later = new Date(Date.now() + 1000).toISOString();
    const second = await roundTrips(
      target,
      { referralId: 'ref-b', notes: 'c', occurredAt: later },
      { 'webhook-id': randomUUID() },
    );
    expect(second, second.join('\n')).toHaveLength(5);
    expect(
      second.filter((line) => line.startsWith('GET')),
      second.join('\n'),
    ).toHaveLength(1);
  });

  it('an event without an id: none; with occurredAt only: 3 (ordering read, claim, confirmation); a dry run: 1 (the ordering read)', async () => {
    const target = app();
    await roundTrips(target, { referralId: 'ref-warm', notes: 'x' }, { 'webhook-id': randomUUID() });
    expect(await roundTrips(target, { referralId: 'ref-c', notes: 'c' })).toHaveLength(0);
    const occurredAt = new Date().toISOString();
    const ordered = await roundTrips(target, { referralId: 'ref-c', notes: 'd', occurredAt });
    expect(ordered, ordered.join('\n')).toHaveLength(3);
    const later = new Date(Date.now() + 1000).toISOString();
    const dryRun = await roundTrips(
      target,
      { referralId: 'ref-c', notes: 'e', occurredAt: later },
      {},
      { dryRun: 'true' },
    );
    expect(dryRun, dryRun.join('\n')).toHaveLength(1);
  });

  it('an ordered batch (10 events with occurredAt waiting for one turn): 3 for the whole batch (read, claim, confirmation)', async () => {
    const target = app();
    await roundTrips(target, { referralId: 'ref-warm', notes: 'x' }, { 'webhook-id': randomUUID() });
    let open = () => {};
    target.partnerCenter.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const base = Date.now() - 60_000;
    const opener = deliver(target, {
      body: { referralId: 'ref-d', notes: 'opener', occurredAt: new Date(base).toISOString() },
    });
    while (target.partnerCenter.gets < 2) await new Promise((resolve) => setTimeout(resolve, 1));
    const before = proxy.requests.length;
    const events = Array.from({ length: 10 }, (_, i) =>
      deliver(target, {
        body: { referralId: 'ref-d', dealValue: i + 1, occurredAt: new Date(base + 1000 + i).toISOString() },
      }),
    );
    const queues = target.runtimeValue.referrals;
    while (queues.waiting('ref-d') < 10) await new Promise((resolve) => setTimeout(resolve, 1));
    open();
    expect((await opener).status).toBe(200);
    const answers = await Promise.all(events);
    expect(answers.map((a) => a.json.outcome)).toEqual(answers.map(() => 'updated'));
    // The opener's claim and confirmation (its record read came before), then the batch's 3 (one by one: 30).
    const trips = proxy.requests.slice(before);
    expect(trips, trips.join('\n')).toHaveLength(5);
  });

  it('the event store and the delivery store on one table share one client: the table is created once', async () => {
    const config = {
      store: 'table' as const,
      retentionSeconds: 3600,
      waitMs: 1000,
      tableName: `t${randomUUID().replaceAll('-', '')}`,
      connection: { connectionString: proxy.connectionString },
    };
    const before = proxy.requests.length;
    await createTableIdempotencyStore(config).readOrdering('ref-e', {});
    await createTableDeliveryStore(config).get('evt-e', {});
    const creates = proxy.requests.slice(before).filter((line) => /^POST \S*\/Tables$/.test(line));
    expect(creates).toHaveLength(1);
  });
});
