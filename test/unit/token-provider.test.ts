import { setTimeout as sleep } from 'node:timers/promises';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { createManagedIdentityTokenProvider } from '../../shared/auth/managed-identity.js';
import { createTokenCache } from '../../shared/auth/token-provider.js';
import { AdapterError } from '../../shared/core/errors.js';

/** A credential whose answers the test scripts: a test double for the token source only. */
function scriptedCredential(lifetimesMs: number[]) {
  const calls: string[] = [];
  let n = 0;
  const credential: TokenCredential = {
    async getToken(scope: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
      calls.push(String(scope));
      await sleep(5);
      const lifetime = lifetimesMs[Math.min(n, lifetimesMs.length - 1)] ?? 3_600_000;
      n++;
      if (lifetime < 0) throw Object.assign(new Error('endpoint down'), { name: 'CredentialUnavailableError' });
      return { token: `t${n}`, expiresOnTimestamp: Date.now() + lifetime };
    },
  };
  return { credential, calls };
}

const SCOPE = 'https://api.partner.microsoft.com/.default';

describe('managed identity token provider', () => {
  it('shares one request among concurrent callers and reuses the token', async () => {
    const { credential, calls } = scriptedCredential([3_600_000]);
    const provider = createManagedIdentityTokenProvider({ scope: SCOPE, clientId: undefined, credential });
    const tokens = await Promise.all(Array.from({ length: 50 }, () => provider.getToken()));
    expect(new Set(tokens)).toEqual(new Set(['t1']));
    expect(await provider.getToken()).toBe('t1');
    expect(calls).toEqual([SCOPE]);
    expect(await provider.health()).toMatchObject({ mode: 'managed-identity', requests: 1, lastFailure: null });
  });

  it('renews a token that is inside the refresh margin', async () => {
    const { credential, calls } = scriptedCredential([60_000, 3_600_000]);
    const provider = createManagedIdentityTokenProvider({ scope: SCOPE, clientId: undefined, credential });
    expect(await provider.getToken()).toBe('t1');
    expect(await provider.getToken()).toBe('t2');
    expect(await provider.getToken()).toBe('t2');
    expect(calls).toHaveLength(2);
  });

  it('keeps using a still-valid token when renewal fails', async () => {
    const { credential } = scriptedCredential([120_000, -1]);
    const provider = createManagedIdentityTokenProvider({ scope: SCOPE, clientId: undefined, credential });
    expect(await provider.getToken()).toBe('t1');
    expect(await provider.getToken()).toBe('t1');
    expect((await provider.health()).lastFailure).toBe('MANAGED_IDENTITY_UNAVAILABLE');
  });

  it('fetches a new token after invalidate()', async () => {
    const { credential } = scriptedCredential([3_600_000]);
    const provider = createManagedIdentityTokenProvider({ scope: SCOPE, clientId: undefined, credential });
    const first = await provider.getToken();
    provider.invalidate('some other token');
    expect(await provider.getToken()).toBe(first);
    provider.invalidate(first);
    expect(await provider.getToken()).toBe('t2');
  });

  it('reports an unreachable identity endpoint as a retryable 503, without the error message', async () => {
    const { credential } = scriptedCredential([-1]);
    const provider = createManagedIdentityTokenProvider({ scope: SCOPE, clientId: undefined, credential });
    const error = await provider.getToken().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AdapterError);
    expect(error).toMatchObject({ code: 'upstream_unavailable', status: 503, retryable: true });
    expect((error as AdapterError).message).not.toContain('endpoint down');
  });

  it('reports a refusal by the identity endpoint as upstream_auth_failed', async () => {
    const credential: TokenCredential = {
      getToken: async () => {
        throw Object.assign(new Error('identity not found'), { name: 'AuthenticationError', statusCode: 400 });
      },
    };
    const provider = createManagedIdentityTokenProvider({ scope: SCOPE, clientId: 'x', credential });
    await expect(provider.getToken()).rejects.toMatchObject({ code: 'upstream_auth_failed', retryable: false });
  });
});

describe('createTokenCache().refresh (the keep-alive)', () => {
  it('fetches past a valid cached token, shares a request already in flight, and later calls use its token', async () => {
    let n = 0;
    const cache = createTokenCache(async () => {
      await sleep(5);
      n++;
      return { token: `t${n}`, expiresOnTimestamp: Date.now() + 3_600_000 };
    });
    expect(await cache.getToken()).toBe('t1');
    expect(await cache.getToken()).toBe('t1');
    const [refreshed, waiting] = await Promise.all([cache.refresh(), cache.refresh()]);
    expect([refreshed.token, waiting.token]).toEqual(['t2', 't2']);
    expect(await cache.getToken()).toBe('t2');
    expect(cache.status.requests).toBe(2);
  });
});
