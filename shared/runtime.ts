/**
 * The process-wide objects the functions share: configuration (validated once), one token provider
 * and one Partner Center connection pool. Built on first use; nothing heavy is imported here.
 */
import { type Config, loadConfig } from './config.js';
import { AdapterError } from './errors.js';
import { createPartnerCenterClient, type PartnerCenterClient } from './partner-center-client.js';
import { createManagedIdentityTokenProvider, type TokenProvider } from './token-provider.js';

export interface Runtime {
  config: Config;
  tokens: TokenProvider;
  client: PartnerCenterClient;
}

let runtime: Runtime | undefined;

/**
 * Validates the configuration when the app loads, so a wrong setting shows in the start-up log (the
 * worker keeps running: `/api/health` lists the problems and events answer `configuration_invalid`).
 */
export function checkConfigurationAtStartup(log: (message: string) => void = console.error): void {
  const result = loadConfig();
  if (!result.ok) log(`partner-center-referral-webhook: invalid configuration: ${result.problems.join('; ')}`);
}

/** The shared runtime; throws `configuration_invalid` (naming every problem) when the settings are wrong. */
export function getRuntime(): Runtime {
  if (runtime) return runtime;
  const result = loadConfig();
  if (!result.ok) {
    throw new AdapterError(
      'configuration_invalid',
      `The adapter's configuration is invalid: ${result.problems.join('; ')}`,
      {
        extensions: { problems: result.problems },
      },
    );
  }
  const { config } = result;
  const tokens = createManagedIdentityTokenProvider({
    scope: config.partnerCenter.scope,
    clientId: config.identity.clientId,
  });
  runtime = { config, tokens, client: createPartnerCenterClient(config.partnerCenter, tokens) };
  return runtime;
}

/** The runtime if it was already built (health reports token state without building anything). */
export function peekRuntime(): Runtime | undefined {
  return runtime;
}
