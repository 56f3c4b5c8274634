/**
 * The process-wide objects the functions share: configuration (validated once), one token provider
 * and one Partner Center connection pool. Built on first use; nothing heavy is imported here.
 */

import { randomUUID } from 'node:crypto';
import { createAppUserTokenProvider } from './auth/app-user.js';
import { type AppUserConsent, createAppUserConsent } from './auth/app-user-consent.js';
import { createKeyVaultSecretStore, type SecretStore } from './auth/key-vault.js';
import { createManagedIdentityTokenProvider, managedIdentityCredential } from './auth/managed-identity.js';
import type { TokenProvider } from './auth/token-provider.js';
import { type Config, type DeliveryConfig, loadConfig } from './config.js';
import { AdapterError } from './core/errors.js';
import { createStorageEventQueue } from './delivery/queue.js';
import type { DeliveryStore, EventQueue } from './delivery/store.js';
import { createTableDeliveryStore } from './delivery/table-store.js';
import { createMemoryIdempotencyStore } from './idempotency/store.js';
import { createTableIdempotencyStore } from './idempotency/table-store.js';
import { createPartnerCenterClient } from './partner-center/client.js';
import { type Telemetry, type TelemetryStarter, telemetryStarter } from './telemetry/telemetry.js';
import type { ConsentApp } from './use-cases/app-user-consent.js';
import type { EventApp, EventRuntime } from './use-cases/process-event.js';
import { ReferralQueues } from './use-cases/referral-batch.js';

export interface Runtime extends EventRuntime {
  config: Config;
  tokens: TokenProvider;
  /** Asynchronous delivery: the deliveries (in the idempotency table) and the queue; absent on the memory store. */
  delivery?: { store: DeliveryStore; queue: EventQueue; config: DeliveryConfig } | undefined;
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
    referrals: new ReferralQueues(),
    delivery: createDelivery(config),
  };
  return runtime;
}

/** This process's telemetry (a no-op unless configured): Application Insights starts once, in the background. */
function appTelemetryStarter(): TelemetryStarter {
  const result = loadConfig();
  return telemetryStarter(result.ok ? result.config.telemetry : undefined);
}

/** Starts Application Insights now when configured, resolving once it is ready (tests, tools). */
export function appTelemetry(): Promise<Telemetry> {
  return appTelemetryStarter().ready();
}

/** Starts Application Insights when configured, in the background, once no event is in flight (docs/telemetry.md#start-up). */
export function startAppTelemetryInBackground(): void {
  appTelemetryStarter().startInBackground();
}

/** What `processEvent` runs on in the deployed app: this process's runtime and telemetry. */
export const APP: EventApp = { runtime: getRuntime, telemetry: () => appTelemetryStarter().current() };

/** What the bootstrap's admin functions run on: the consent edge and one test call with a given token. */
export const APP_USER_CONSENT: ConsentApp = {
  consent(): AppUserConsent {
    const { config } = getRuntime();
    const { auth, identity, partnerCenter } = config;
    if (auth.mode !== 'app-user') {
      throw new AdapterError(
        'configuration_invalid',
        'The bootstrap needs PARTNER_CENTER_AUTH=app-user: in managed-identity mode there is no refresh token to store.',
      );
    }
    return createAppUserConsent({
      auth,
      scope: partnerCenter.scope,
      managedIdentityClientId: identity.clientId,
      secrets: keyVaultSecrets(config),
    });
  },
  async checkAccess(accessToken) {
    const { config } = getRuntime();
    const fixed: TokenProvider = {
      getToken: async () => accessToken,
      invalidate: () => {},
      health: async () => ({
        mode: 'app-user',
        requests: 0,
        lastSuccessAt: null,
        lastFailureAt: null,
        lastFailure: null,
        warnings: [],
      }),
    };
    const client = createPartnerCenterClient(config.partnerCenter, config.retry, fixed);
    try {
      await client.checkAccess({ correlationId: randomUUID(), timeoutMs: config.retry.requestTimeoutMs });
    } finally {
      await client.close();
    }
  },
  log(level, record) {
    const line = JSON.stringify({ event: 'app-user-consent', level, ...record });
    (level === 'error' ? console.error : level === 'warn' ? console.warn : console.info)(line);
  },
};

/** The deliveries store and the queue (docs/async-delivery.md): with the Table store and a queue connection only. */
function createDelivery(config: Config): Runtime['delivery'] {
  const { idempotency, delivery } = config;
  if (idempotency.store !== 'table' || delivery.queue === undefined) return undefined;
  return {
    store: createTableDeliveryStore(idempotency),
    queue: createStorageEventQueue({ ...delivery, queue: delivery.queue }),
    config: delivery,
  };
}

function createTokenProvider(config: Config): TokenProvider {
  const { auth, identity, partnerCenter } = config;
  if (auth.mode === 'managed-identity') {
    return createManagedIdentityTokenProvider({ scope: partnerCenter.scope, clientId: identity.clientId });
  }
  return createAppUserTokenProvider({
    auth,
    scope: partnerCenter.scope,
    managedIdentityClientId: identity.clientId,
    secrets: keyVaultSecrets(config),
  });
}

/** The vault of the refresh token, read and written with the app's managed identity (app-user mode). */
function keyVaultSecrets({ auth, identity }: Config): SecretStore {
  if (auth.mode !== 'app-user') throw new Error('Key Vault is used in app-user mode only');
  return createKeyVaultSecretStore({
    vaultUrl: auth.keyVaultUrl,
    credential: () => managedIdentityCredential(identity.clientId),
    loopback: auth.keyVaultLoopback,
  });
}
