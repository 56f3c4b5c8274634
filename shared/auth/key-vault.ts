/**
 * Secrets in Azure Key Vault, read and written with the managed identity (`@azure/keyvault-secrets`,
 * loaded on first use). Holds the Secure Application Model refresh token and, optionally, the app
 * registration's fallback client secret.
 */
import type { TokenCredential } from '@azure/identity';
import type { SecretClient } from '@azure/keyvault-secrets';
import { type AbortOptions, anySignal } from '../core/abort.js';
import { AdapterError } from '../core/errors.js';

export interface StoredSecret {
  value: string;
  version: string;
  createdOn: Date | undefined;
}

export interface SecretStore {
  /** The newest version, or undefined when the secret does not exist. */
  get(name: string, options?: AbortOptions): Promise<StoredSecret | undefined>;
  /** Writes a new version (one request: the version exists afterwards, or it does not). */
  set(name: string, value: string, contentType: string, options?: AbortOptions): Promise<StoredSecret>;
}

export interface KeyVaultOptions {
  vaultUrl: string;
  credential: () => Promise<TokenCredential>;
  /** A loopback vault (tests) cannot pass the SDK's check that the challenge resource matches the vault host. */
  loopback: boolean;
}

/** Upper bound for one Key Vault call, its SDK retry included (an inner bound under the caller's `abortSignal`). */
const TIMEOUT_MS = 10_000;

export function createKeyVaultSecretStore(options: KeyVaultOptions): SecretStore {
  let client: Promise<SecretClient> | undefined;
  const getClient = () => {
    client ??= Promise.all([import('./keyvault-secrets.js'), options.credential()]).then(
      ([{ SecretClient }, credential]) =>
        new SecretClient(options.vaultUrl, credential, {
          disableChallengeResourceVerification: options.loopback,
          // The update loop owns retries and the time budget; one quick SDK retry is enough here.
          retryOptions: { maxRetries: 1, retryDelayInMs: 200, maxRetryDelayInMs: 1000 },
        }),
    );
    return client;
  };

  return {
    async get(name, callOptions = {}) {
      try {
        const secret = await (await getClient()).getSecret(name, {
          abortSignal: anySignal(AbortSignal.timeout(TIMEOUT_MS), callOptions.abortSignal),
        });
        return {
          value: secret.value ?? '',
          version: secret.properties.version ?? '',
          createdOn: secret.properties.createdOn,
        };
      } catch (error) {
        if ((error as { statusCode?: unknown }).statusCode === 404) return undefined;
        throw keyVaultError(error, 'read', name);
      }
    },
    async set(name, value, contentType, callOptions = {}) {
      try {
        const secret = await (await getClient()).setSecret(name, value, {
          contentType,
          abortSignal: anySignal(AbortSignal.timeout(TIMEOUT_MS), callOptions.abortSignal),
        });
        return { value, version: secret.properties.version ?? '', createdOn: secret.properties.createdOn };
      } catch (error) {
        throw keyVaultError(error, 'write', name);
      }
    },
  };
}

/** Status codes only: Key Vault error messages can quote request details. */
function keyVaultError(error: unknown, action: 'read' | 'write', name: string): AdapterError {
  if (error instanceof AdapterError) return error;
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  if (statusCode === 401 || statusCode === 403) {
    return new AdapterError(
      'upstream_auth_failed',
      `Key Vault refused to ${action} the secret "${name}" (HTTP ${statusCode}). Give the function app's managed identity secret get and set on the vault: the template's custom role "Key Vault secret get and set" (or Key Vault Secrets Officer); Secrets User cannot write the rotated refresh token back (docs/deploy.md). A role assigned in the last minutes may not have propagated yet.`,
      { cause: error, logCode: 'KEY_VAULT_ACCESS_DENIED' },
    );
  }
  const what = typeof statusCode === 'number' ? `HTTP ${statusCode}` : error instanceof Error ? error.name : 'error';
  return new AdapterError('upstream_unavailable', `Key Vault could not ${action} the secret "${name}" (${what}).`, {
    cause: error,
    retryAfterSeconds: 2,
    logCode: 'KEY_VAULT_UNAVAILABLE',
  });
}
