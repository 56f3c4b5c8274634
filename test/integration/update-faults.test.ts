/**
 * Fault injection, as a property: for any script of upstream faults (throttling, 5xx, resets, lost PUT
 * responses, concurrent edits), the update use case — real client, real @azure/identity, loopback
 * sandbox — either applies the event exactly or reports a retryable failure, never loses a field, and
 * never sends another PUT once a PUT of its own has landed. Under each write method
 * (`PARTNER_CENTER_WRITE_METHOD=put|patch`): the same holds of PATCH.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdentityEmulator, startIdentityEmulator } from '../../dev/emulators/identity.js';
import type { FaultAction } from '../../dev/sandbox/faults.js';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { type PartnerCenterSandbox, startPartnerCenterSandbox } from '../../dev/sandbox/server.js';
import { createManagedIdentityTokenProvider } from '../../shared/auth/managed-identity.js';
import { parseConfig } from '../../shared/config.js';
import { parseUpdateEvent } from '../../shared/contract/update-event.js';
import { isAdapterError } from '../../shared/core/errors.js';
import { createPartnerCenterClient, type PartnerCenterClient } from '../../shared/partner-center/client.js';
import { type UpdateDependencies, updateReferral } from '../../shared/use-cases/update-referral.js';

let identity: IdentityEmulator;
let sandbox: PartnerCenterSandbox;

beforeAll(async () => {
  identity = await startIdentityEmulator();
  process.env.IDENTITY_ENDPOINT = identity.endpoint;
  process.env.IDENTITY_HEADER = identity.header;
  sandbox = await startPartnerCenterSandbox({ acceptToken: (t) => identity.isIssued(t) });
});
afterAll(async () => {
  await sandbox?.close();
  await identity?.close();
});

/** The real client with the write method, for the enclosing suite. */
function useClient(method: 'put' | 'patch'): { deps: UpdateDependencies } {
  let client: PartnerCenterClient | undefined;
  const world = {} as { deps: UpdateDependencies };
  beforeAll(() => {
    const parsed = parseConfig({
      PARTNER_CENTER_BASE_URL: sandbox.url,
      PARTNER_CENTER_WRITE_METHOD: method,
      IDEMPOTENCY_STORE: 'memory',
      RETRY_BASE_DELAY_MS: '1',
      RETRY_MAX_DELAY_MS: '5',
      UPSTREAM_REQUEST_TIMEOUT_MS: '1000',
      UPSTREAM_MAX_RETRIES: '6',
    });
    if (!parsed.ok) throw new Error(parsed.problems.join());
    const tokens = createManagedIdentityTokenProvider({
      scope: parsed.config.partnerCenter.scope,
      clientId: undefined,
    });
    client = createPartnerCenterClient(parsed.config.partnerCenter, parsed.config.retry, tokens);
    world.deps = { client, retry: parsed.config.retry };
  });
  afterAll(async () => {
    await client?.close();
  });
  return world;
}

const edit = (r: Record<string, unknown>) => {
  r.statusReason = `edited by someone else ${Math.random()}`;
};
const faultAction: fc.Arbitrary<FaultAction> = fc.constantFrom<FaultAction>(
  { type: 'status', status: 429, retryAfter: '0' },
  { type: 'status', status: 500 },
  { type: 'status', status: 502 },
  { type: 'status', status: 503 },
  { type: 'status', status: 504 },
  { type: 'reset' },
  { type: 'apply-then-reset' },
  { type: 'apply-then-status', status: 502 },
  { type: 'concurrent-edit', edit },
  { type: 'delay', ms: 5 },
);
const faultOn = (write: string) => fc.record({ method: fc.constantFrom('GET', write), action: faultAction });
const WRITTEN = ['status', 'substatus', 'statusReason', 'eTag', 'updatedDateTime'];

function withoutWritten(referral: Record<string, unknown> | undefined) {
  const copy = structuredClone(referral ?? {});
  for (const key of WRITTEN) delete copy[key];
  delete (copy.details as Record<string, unknown>).dealValue;
  return copy;
}

describe.each(['put', 'patch'] as const)('PARTNER_CENTER_WRITE_METHOD=%s', (method) => {
  const world = useClient(method);
  const WRITE = method === 'patch' ? 'PATCH' : 'PUT';
  const OTHER = method === 'patch' ? 'PUT' : 'PATCH';

  it('applies exactly once or fails retryably, whatever the upstream does', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(faultOn(WRITE), { maxLength: 6 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        async (faults, dealValue) => {
          sandbox.reset();
          const id = SEED_IDS.newPending;
          const before = sandbox.getReferral(id);
          for (const f of faults) sandbox.injectFault({ ...f, referralId: id });
          const event = parseUpdateEvent({ referralId: id, status: 'Active', dealValue });

          let outcome: string;
          try {
            outcome = (
              await updateReferral(event, world.deps, { correlationId: '00000000-0000-4000-8000-000000000001' })
            ).outcome;
          } catch (error) {
            if (!isAdapterError(error)) throw error;
            expect(error.retryable, `${error.code}: ${error.message}`).toBe(true);
            outcome = 'failed';
          }
          const after = sandbox.getReferral(id);
          const applied =
            after?.status === 'Active' && (after.details as Record<string, unknown>).dealValue === dealValue;
          if (outcome === 'updated') expect(applied).toBe(true);
          if (outcome === 'failed') {
            // Not applied, or applied by a PUT whose answer never came back: both are safe to retry.
            expect(applied || (after?.status === 'New' && after.substatus === 'Pending')).toBe(true);
          }
          expect(outcome).not.toBe('unchanged');
          // No field lost, whatever happened.
          expect(withoutWritten(after)).toEqual(withoutWritten(before));
          // Once a write of ours landed (answered or not), no further write is sent.
          const putFaults = faults.filter((f) => f.method === WRITE).map((f) => f.action.type);
          const puts = sandbox.requests.filter((r) => r.method === WRITE);
          expect(sandbox.requests.filter((r) => r.method === OTHER)).toEqual([]);
          for (const write of puts) expect(write.headers['if-match'], 'every write is conditional').toMatch(/^".+"$/);
          const landedAt = puts.findIndex((_, i) => {
            const type = putFaults[i];
            return (
              type === undefined || type === 'apply-then-reset' || type === 'apply-then-status' || type === 'delay'
            );
          });
          if (landedAt >= 0) expect(puts.length).toBe(landedAt + 1);
        },
      ),
      { numRuns: 60 },
    );
  });
});
