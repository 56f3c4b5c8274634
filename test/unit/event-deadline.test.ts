/**
 * The event deadline's building blocks, without I/O: a waiter's abort on the shared token request, the
 * per-referral lock under a deadline, the bookkeeping grace after it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { describe, expect, it, vi } from 'vitest';
import { createManagedIdentityTokenProvider } from '../../shared/auth/managed-identity.js';
import { createTokenCache } from '../../shared/auth/token-provider.js';
import { abortable } from '../../shared/core/abort.js';
import { createMemoryIdempotencyStore } from '../../shared/idempotency/store.js';
import { afterDeadline, eventDeadline } from '../../shared/use-cases/deadline.js';
import { KeyedLock } from '../../shared/use-cases/keyed-lock.js';

const SCOPE = 'https://api.partner.microsoft.com/.default';

/** A token source the test releases by hand; it records the signal each request got. */
function gatedSource() {
  const requests: Array<{ signal: { aborted: boolean } | undefined; release: (token: string) => void }> = [];
  const credential: TokenCredential = {
    getToken(_scope: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
      return new Promise((resolve) => {
        requests.push({
          signal: options?.abortSignal,
          release: (token) => resolve({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
        });
      });
    },
  };
  return { credential, requests };
}

describe('token provider under event deadlines', () => {
  it("a waiter's abort does not cancel the shared request: the others get its token", async () => {
    const { credential, requests } = gatedSource();
    const provider = createManagedIdentityTokenProvider({ scope: SCOPE, clientId: undefined, credential });
    const impatient = new AbortController();
    const first = provider.getToken({ abortSignal: impatient.signal });
    const patient = provider.getToken({ abortSignal: new AbortController().signal });
    const unbounded = provider.getToken();
    await Promise.resolve();
    expect(requests).toHaveLength(1);

    impatient.abort(new DOMException('deadline', 'TimeoutError'));
    await expect(first).rejects.toMatchObject({ code: 'upstream_timeout', status: 504, retryable: true });
    expect(requests[0]?.signal?.aborted).toBe(false);

    requests[0]?.release('shared');
    expect(await patient).toBe('shared');
    expect(await unbounded).toBe('shared');
    expect(requests).toHaveLength(1);
    expect(await provider.health()).toMatchObject({ requests: 1, lastFailure: null });
  });

  it('a token that arrives after every waiter gave up is kept for the next event', async () => {
    const { credential, requests } = gatedSource();
    const provider = createManagedIdentityTokenProvider({ scope: SCOPE, clientId: undefined, credential });
    const gone = new AbortController();
    const waiting = provider.getToken({ abortSignal: gone.signal });
    await Promise.resolve();
    gone.abort(new DOMException('deadline', 'TimeoutError'));
    await expect(waiting).rejects.toMatchObject({ code: 'upstream_timeout' });
    requests[0]?.release('late');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await provider.getToken()).toBe('late');
    expect(requests).toHaveLength(1);
  });

  it('an already expired deadline answers at once', async () => {
    const { credential } = gatedSource();
    const provider = createManagedIdentityTokenProvider({ scope: SCOPE, clientId: undefined, credential });
    await expect(provider.getToken({ abortSignal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'upstream_timeout',
    });
  });

  it('the shared request runs under its own bound, whoever waits', async () => {
    const signals: AbortSignal[] = [];
    const cache = createTokenCache(
      ({ abortSignal }) => {
        signals.push(abortSignal);
        return new Promise((_resolve, reject) => {
          abortSignal.addEventListener('abort', () => reject(abortSignal.reason), { once: true });
        });
      },
      { fetchTimeoutMs: 20 },
    );
    const error = await cache.getToken().catch((e: unknown) => e);
    expect((error as Error).name).toBe('TimeoutError');
    expect(signals).toHaveLength(1);
    expect(cache.status).toMatchObject({ requests: 1, lastFailure: 'TimeoutError' });
  });
});

describe('abortable', () => {
  it('rejects with the reason when the signal aborts, and lets the work finish', async () => {
    let finish!: (value: string) => void;
    const work = new Promise<string>((resolve) => {
      finish = resolve;
    });
    const controller = new AbortController();
    const waiting = abortable(work, controller.signal);
    const reason = new DOMException('deadline', 'TimeoutError');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    finish('done');
    expect(await work).toBe('done');
    expect(await abortable(work, new AbortController().signal)).toBe('done');
  });
});

describe('per-referral lock under a deadline', () => {
  it('a waiter whose deadline runs out leaves; the queue behind it keeps its order', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    let finishFirst!: () => void;
    const first = lock.run('r', async () => {
      order.push('first:start');
      await new Promise<void>((resolve) => {
        finishFirst = resolve;
      });
      order.push('first:end');
    });
    const controller = new AbortController();
    const second = lock.run('r', async () => order.push('second'), { abortSignal: controller.signal });
    const third = lock.run('r', async () => order.push('third'));
    controller.abort(new DOMException('deadline', 'TimeoutError'));
    await expect(second).rejects.toMatchObject({ name: 'TimeoutError' });
    // The first holder still runs: a later event must still wait for it.
    const fourth = lock.run('r', async () => order.push('fourth'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['first:start']);
    finishFirst();
    await Promise.all([first, third, fourth]);
    expect(order).toEqual(['first:start', 'first:end', 'third', 'fourth']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lock.size).toBe(0);
  });
});

describe('bookkeeping after the deadline', () => {
  it('afterDeadline aborts only a grace period after the deadline, without a listener on the event signal', async () => {
    const deadline = eventDeadline(10);
    const listening = vi.spyOn(deadline.signal, 'addEventListener');
    const grace = afterDeadline(deadline, 20);
    expect(listening).not.toHaveBeenCalled();
    await sleep(15);
    expect(deadline.signal.aborted).toBe(true);
    expect(grace.aborted).toBe(false);
    await sleep(40);
    expect(grace.aborted).toBe(true);
  });

  it('the memory store takes the options bags', async () => {
    const store = createMemoryIdempotencyStore();
    const abortSignal = new AbortController().signal;
    const claim = await store.begin('e1', 'f', { leaseMs: 1000, retentionMs: 10_000, abortSignal });
    expect(claim.kind).toBe('started');
    if (claim.kind !== 'started') return;
    expect((await store.begin('e1', 'f', { leaseMs: 1000, retentionMs: 10_000 })).kind).toBe('in-progress');
    await store.release(claim.lease, { abortSignal });
    const again = await store.begin('e1', 'f', { leaseMs: 1000, retentionMs: 10_000 });
    if (again.kind !== 'started') throw new Error(again.kind);
    await store.complete(again.lease, 'f', { status: 200, headers: {}, body: '{}' }, { retentionMs: 10_000 });
    expect((await store.begin('e1', 'f', { leaseMs: 1000, retentionMs: 10_000 })).kind).toBe('replay');
    const record = { notes: { at: '2026-01-01T00:00:00.000Z' } };
    const version = await store.writeOrdering('r', record, undefined, { abortSignal });
    expect(await store.readOrdering('r', { abortSignal })).toEqual({ record, version });
  });
});
