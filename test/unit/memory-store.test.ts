/**
 * The memory idempotency store (IDEMPOTENCY_STORE=memory) frees what it no longer needs: expired records,
 * and past its bounds the oldest finished ones, never a record in progress. A fake clock, no waiting.
 */
import { describe, expect, it } from 'vitest';
import {
  createMemoryIdempotencyStore,
  MEMORY_STORE_BOUNDS,
  type StoredResponse,
} from '../../shared/idempotency/store.js';

const RETENTION_MS = 1_000;
const options = { leaseMs: 100, retentionMs: RETENTION_MS };
const answer = (body = '{"outcome":"updated"}'): StoredResponse => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body,
});

function clock() {
  const state = { t: 1_000_000 };
  return { now: () => state.t, advance: (ms: number) => (state.t += ms) };
}

async function finish(store: ReturnType<typeof createMemoryIdempotencyStore>, key: string, body?: string) {
  const claim = await store.begin(key, `fp-${key}`, options);
  if (claim.kind !== 'started') throw new Error(`expected to start ${key}, got ${claim.kind}`);
  await store.complete(claim.lease, `fp-${key}`, answer(body), options);
}

describe('memory idempotency store: expiry and bounds (#11 item 5)', () => {
  it('frees expired records: 4,000 large answers past their retention leave nothing behind', async () => {
    const { now, advance } = clock();
    const store = createMemoryIdempotencyStore(now);
    for (let i = 0; i < 4_000; i++) await finish(store, `evt-${i}`, 'x'.repeat(2_000));
    expect(store.usage().records).toBe(4_000);

    advance(RETENTION_MS + 1);
    await finish(store, 'evt-later');

    expect(store.usage().records).toBe(1);
    expect(store.usage().bytes).toBeLessThan(1_000);
  });

  it('past maxRecords, drops the oldest finished record: its redelivery runs again, the newer ones replay', async () => {
    const { now } = clock();
    const store = createMemoryIdempotencyStore(now, { maxRecords: 2 });
    await finish(store, 'a');
    await finish(store, 'b');
    await finish(store, 'c');

    expect(store.usage().records).toBe(2);
    expect((await store.begin('b', 'fp-b', options)).kind).toBe('replay');
    expect((await store.begin('c', 'fp-c', options)).kind).toBe('replay');
    expect((await store.begin('a', 'fp-a', options)).kind).toBe('started');
  });

  it('past maxRecords, also drops a record whose lease lapsed unfinished (a crashed delivery), never a running one', async () => {
    const time = clock();
    const store = createMemoryIdempotencyStore(time.now, { maxRecords: 1 });
    await store.begin('crashed', 'fp', options);
    time.advance(options.leaseMs + 1);
    await store.begin('running', 'fp', options);
    await store.begin('next', 'fp', options);

    expect(store.usage().records).toBe(2);
    expect((await store.begin('running', 'fp', options)).kind).toBe('in-progress');
  });

  it('past maxBytes, drops the oldest finished answers until it fits', async () => {
    const { now } = clock();
    const store = createMemoryIdempotencyStore(now, { maxBytes: 50_000 });
    for (const key of ['a', 'b', 'c', 'd']) await finish(store, key, 'x'.repeat(10_000));

    expect(store.usage().bytes).toBeLessThanOrEqual(50_000);
    expect((await store.begin('d', 'fp-d', options)).kind).toBe('replay');
    expect((await store.begin('a', 'fp-a', options)).kind).toBe('started');
  });

  it('never drops a record in progress: a copy arriving meanwhile still waits for it', async () => {
    const { now } = clock();
    const store = createMemoryIdempotencyStore(now, { maxRecords: 1 });
    const running = await store.begin('running', 'fp-running', options);
    await finish(store, 'done-1');
    await finish(store, 'done-2');

    expect(running.kind).toBe('started');
    expect((await store.begin('running', 'fp-running', options)).kind).toBe('in-progress');
  });

  it('documents its default bounds', () => {
    expect(MEMORY_STORE_BOUNDS).toEqual({ maxRecords: 10_000, maxBytes: 32 * 1024 * 1024 });
  });
});

describe('a running event keeps its id (review of #11)', () => {
  it('a retention shorter than the lease does not free the id of an event still in progress', async () => {
    const time = clock();
    const store = createMemoryIdempotencyStore(time.now);
    const short = { leaseMs: 1_000, retentionMs: 10 };
    expect((await store.begin('evt-long', 'fp', short)).kind).toBe('started');
    time.advance(500);
    expect((await store.begin('evt-long', 'fp', short)).kind).toBe('in-progress');
    time.advance(600);
    expect((await store.begin('evt-long', 'fp', short)).kind).toBe('started');
  });
});
