/** Tokens: one managed-identity request serves many events, through the real @azure/identity. */
import { expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { useStack } from '../support/stack.js';

const CLIENT_ID = '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const stack = useStack({ AZURE_CLIENT_ID: CLIENT_ID });

it('requests one token for many events, sequential and concurrent, for the user-assigned identity', async () => {
  const ids = [SEED_IDS.newPending, SEED_IDS.newReceived, SEED_IDS.activeAccepted, SEED_IDS.activeSparse];
  for (let i = 0; i < 5; i++) {
    const answer = await stack.post({ referralId: ids[i % ids.length], notes: `sequential ${i}` });
    expect(answer.status, answer.text).toBe(200);
  }
  const burst = await Promise.all(
    Array.from({ length: 25 }, (_, i) => stack.post({ referralId: ids[i % ids.length], statusReason: `burst ${i}` })),
  );
  for (const answer of burst) expect([200, 409]).toContain(answer.status);
  expect(burst.filter((a) => a.status === 200).length).toBeGreaterThan(20);

  expect(stack.identity.issued).toHaveLength(1);
  expect(stack.identity.issued[0]).toMatchObject({
    resource: 'https://api.partner.microsoft.com',
    clientId: CLIENT_ID,
  });
  const tokens = new Set(stack.sandbox.requests.map((r) => r.headers.authorization));
  expect(tokens).toEqual(new Set([`Bearer ${stack.identity.issued[0]?.token}`]));

  const health = (await (await fetch(`${stack.hostUrl}/api/health`)).json()) as { auth: unknown };
  expect(health.auth).toMatchObject({ userAssignedClientId: CLIENT_ID, requests: 1, lastFailure: null });
});
