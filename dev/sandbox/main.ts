/**
 * Standalone entry: `node dist/dev/sandbox/main.js`. Starts the sandbox on
 * SANDBOX_PORT (default 0 = random), prints its URL and the seeded ids, and
 * closes on SIGINT/SIGTERM.
 */
import { SEED_IDS } from './seed.js';
import { startPartnerCenterSandbox } from './server.js';

const port = Number(process.env.SANDBOX_PORT ?? '0');
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`SANDBOX_PORT must be a port number; got ${process.env.SANDBOX_PORT}`);
  process.exit(1);
}

async function main(): Promise<void> {
  const sandbox = await startPartnerCenterSandbox({ port });
  console.log(`Partner Center sandbox listening on ${sandbox.url}`);
  console.log(`Base URL: ${sandbox.url}/v1.0/engagements/referrals (any non-empty Bearer token is accepted)`);
  console.log('Seeded referrals:');
  for (const [name, id] of Object.entries(SEED_IDS)) {
    const referral = sandbox.getReferral(id);
    console.log(`  ${name.padEnd(15)} ${id}  ${String(referral?.status)}/${String(referral?.substatus)}`);
  }

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal} received, closing the sandbox`);
    await sandbox.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
