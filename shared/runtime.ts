/**
 * The process-wide objects the functions share: configuration (validated once), one token provider
 * and one Partner Center connection pool. Built on first use; nothing heavy is imported here.
 */

import { createAppUserTokenProvider } from './app-user-token-provider.js';
import { type Config, loadConfig } from './config.js';
import { AdapterError } from './errors.js';
import { createMemoryIdempotencyStore, type IdempotencyStore } from './idempotency-store.js';
import { createKeyVaultSecretStore } from './key-vault.js';
import { KeyedLock } from './keyed-lock.js';
import { createManagedIdentityTokenProvider, managedIdentityCredential } from './managed-identity.js';
import { createPartnerCenterClient, type PartnerCenterClient } from './partner-center-client.js';
import { createTableIdempotencyStore } from './table-idempotency-store.js';
import type { TokenProvider } from './token-provider.js';

export interface Runtime {
  config: Config;
  tokens: TokenProvider;
  client: PartnerCenterClient;
  idempotency: IdempotencyStore;
  /** Serializes updates per referral within this instance. */
  lock: KeyedLock;
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
    const detail = `The adapter's configuration is invalid: ${result.problems.join('; ')}`;
    throw new AdapterError('configuration_invalid', detail, { extensions: { problems: result.problems } });
  }
  const { config } = result;
  const tokens = createTokenProvider(config);
  runtime = {
    config,
    tokens,
    client: createPartnerCenterClient(config.partnerCenter, config.retry, tokens),
    idempotency:
      config.idempotency.store === 'table'
        ? createTableIdempotencyStore(config.idempotency)
        : createMemoryIdempotencyStore(),
    lock: new KeyedLock(),
  };
  return runtime;
}

function createTokenProvider(config: Config): TokenProvider {
  const { auth, identity, partnerCenter } = config;
  if (auth.mode === 'managed-identity') {
    return createManagedIdentityTokenProvider({ scope: partnerCenter.scope, clientId: identity.clientId });
  }
  const secrets = createKeyVaultSecretStore({
    vaultUrl: auth.keyVaultUrl,
    credential: () => managedIdentityCredential(identity.clientId),
    loopback: auth.keyVaultLoopback,
  });
  return createAppUserTokenProvider({
    auth,
    scope: partnerCenter.scope,
    managedIdentityClientId: identity.clientId,
    secrets,
  });
}
