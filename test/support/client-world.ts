/**
 * The real Partner Center client against the sandbox on loopback, for the client's own tests (instance throttle,
 * exchange bounds, write methods): a fixed token, a seeded referral, and everything opened closed after each test.
 */
import { afterEach } from 'vitest';
import { FIXED_TOKENS } from '../../dev/bench/in-process.js';
import { makeReferral } from '../../dev/sandbox/seed.js';
import { type PartnerCenterSandbox, type SandboxOptions, startPartnerCenterSandbox } from '../../dev/sandbox/server.js';
import { createPartnerCenterClient, type PartnerCenterClient } from '../../shared/partner-center/client.js';
import { type Settings, testConfig } from './use-cases.js';

/** A token provider that always has the same token (the sandbox here accepts any): the bench's. */
export { FIXED_TOKENS };

/** What a test opened, closed in reverse order after it (registers the `afterEach`). */
export function closedAfterEach(): Array<{ close(): Promise<void> }> {
  const opened: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const thing of opened.splice(0).reverse()) await thing.close();
  });
  return opened;
}

/** A sandbox holding one referral and the app's client on it, both closed after the test. */
export async function clientWorld(
  opened: Array<{ close(): Promise<void> }>,
  options: { sandbox?: SandboxOptions; settings?: Settings } = {},
): Promise<{ sandbox: PartnerCenterSandbox; client: PartnerCenterClient; id: string }> {
  const sandbox = await startPartnerCenterSandbox({ seed: false, ...options.sandbox });
  opened.push(sandbox);
  const referral = makeReferral();
  sandbox.putReferral(referral);
  const config = testConfig({ PARTNER_CENTER_BASE_URL: sandbox.url, ...options.settings });
  const client = createPartnerCenterClient(config.partnerCenter, config.retry, FIXED_TOKENS);
  opened.push(client);
  return { sandbox, client, id: referral.id as string };
}
