/**
 * One Azurite (Table and Queue services, in memory) for the whole test run. Its connection string reaches every
 * test worker and every app process the tests start through `AzureWebJobsStorage`; each app process
 * gets a table of its own (see startHostProcess), so test files never see each other's records.
 */
import { type RunningAzurite, startAzurite } from '../../dev/emulators/azurite.js';

let azurite: RunningAzurite | undefined;

export async function setup(): Promise<void> {
  azurite = await startAzurite();
  process.env.AzureWebJobsStorage = azurite.connectionString;
}

export async function teardown(): Promise<void> {
  await azurite?.stop();
}
