/**
 * Configuration, validated once with zod when the app loads. Every setting, its default and its limits
 * are listed here (and in the README's configuration table).
 */
import { z } from 'zod';
import { parseNcrontab } from './core/ncrontab.js';
import { parseStageMap, type StageMap } from './core/stages.js';

export const DEFAULT_PARTNER_CENTER_BASE_URL = 'https://api.partner.microsoft.com';
export const PARTNER_CENTER_SCOPE = 'https://api.partner.microsoft.com/.default';
export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';
export const DEFAULT_REFRESH_TOKEN_SECRET_NAME = 'partner-center-refresh-token';
/** The keep-alive timer's default schedule (NCRONTAB, UTC): every 12 hours. */
export const DEFAULT_REFRESH_TOKEN_RENEWAL_SCHEDULE = '0 0 */12 * * *';

/** One decimal IPv4 part as `net.isIPv4` accepts it: 0–255, no leading zero. */
const IPV4_PART = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * `localhost`, `127.0.0.0/8` or `[::1]`: where plain http is allowed (local emulators). A URL's hostname
 * is already canonical (WHATWG URL writes `127.1` as `127.0.0.1` and `[0:0::1]` as `[::1]`), so string
 * checks suffice; `net.isIP()` would compile Node's IPv6 pattern at load (~10 ms, docs/performance.md).
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1') return true;
  const parts = host.split('.');
  return parts.length === 4 && parts[0] === '127' && parts.every((part) => IPV4_PART.test(part));
}

const intSetting = (name: string, fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < min || value > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be an integer from ${min} to ${max} (got "${raw}")` });
        return z.NEVER;
      }
      return value;
    });

interface ServiceUrl {
  origin: string;
  /** Path after the origin, without a trailing slash. */
  basePath: string;
  loopback: boolean;
}

/** A service URL setting: https, or plain http only towards a loopback host (local emulators). */
const serviceUrl = (name: string, fallback: string | undefined, { httpOnLoopback = true } = {}) =>
  z
    .string()
    .optional()
    .transform((raw, ctx): ServiceUrl | undefined => {
      const value = raw?.trim() || fallback;
      if (value === undefined) return undefined;
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        ctx.addIssue({ code: 'custom', message: `${name} is not a URL: "${value}"` });
        return z.NEVER;
      }
      const loopback = isLoopbackHost(url.hostname);
      if (url.protocol !== 'https:' && !(httpOnLoopback && url.protocol === 'http:' && loopback)) {
        ctx.addIssue({
          code: 'custom',
          message: httpOnLoopback
            ? `${name} must use https (plain http is allowed only for a loopback host such as 127.0.0.1): "${value}"`
            : `${name} must use https: "${value}"`,
        });
        return z.NEVER;
      }
      if (url.search || url.hash || url.username || url.password) {
        ctx.addIssue({ code: 'custom', message: `${name} must not carry a query, fragment or credentials` });
        return z.NEVER;
      }
      return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, ''), loopback };
    });

/** `whsec_` + canonical base64 (what it decodes to encodes back to the same text) of 24 to 64 bytes. */
function isWebhookSecret(secret: string): boolean {
  if (!secret.startsWith('whsec_')) return false;
  const text = secret.slice('whsec_'.length);
  const key = Buffer.from(text, 'base64');
  return key.toString('base64') === text && key.length >= 24 && key.length <= 64;
}

const optionalText = z
  .string()
  .optional()
  .transform((v) => v?.trim() || undefined);

/** Key Vault secret names: 1-127 letters, digits and dashes. */
const secretName = (name: string, fallback?: string) =>
  optionalText
    .pipe(
      z
        .string()
        .regex(/^[0-9a-zA-Z-]{1,127}$/, `${name} must be a Key Vault secret name (letters, digits, dashes)`)
        .optional(),
    )
    .transform((v) => v ?? fallback);

const environmentSchema = z.object({
  PARTNER_CENTER_BASE_URL: serviceUrl('PARTNER_CENTER_BASE_URL', DEFAULT_PARTNER_CENTER_BASE_URL),
  AZURE_CLIENT_ID: optionalText,
  PARTNER_CENTER_AUTH: z
    .string()
    .optional()
    .transform((v) => v?.trim() || 'managed-identity')
    .pipe(z.enum(['managed-identity', 'app-user'], 'PARTNER_CENTER_AUTH must be managed-identity or app-user')),
  // How an update is written (docs/partner-center-api.md#put-or-patch): `put` (whole referral) or `patch` (JSON Patch).
  PARTNER_CENTER_WRITE_METHOD: z
    .string()
    .optional()
    .transform((v) => v?.trim() || 'put')
    .pipe(z.enum(['put', 'patch'], 'PARTNER_CENTER_WRITE_METHOD must be put or patch')),
  KEY_VAULT_URL: serviceUrl('KEY_VAULT_URL', undefined, { httpOnLoopback: false }),
  REFRESH_TOKEN_SECRET_NAME: secretName('REFRESH_TOKEN_SECRET_NAME', DEFAULT_REFRESH_TOKEN_SECRET_NAME),
  PARTNER_TENANT_ID: optionalText,
  APP_REGISTRATION_CLIENT_ID: optionalText,
  // @azure/identity reads this variable too and requires https.
  AZURE_AUTHORITY_HOST: serviceUrl('AZURE_AUTHORITY_HOST', DEFAULT_AUTHORITY_HOST, { httpOnLoopback: false }),
  APP_CLIENT_AUTH: z
    .string()
    .optional()
    .transform((v) => v?.trim() || 'federated')
    .pipe(
      z.enum(['federated', 'key-vault-secret', 'none'], 'APP_CLIENT_AUTH must be federated, key-vault-secret or none'),
    ),
  APP_CLIENT_SECRET_NAME: secretName('APP_CLIENT_SECRET_NAME'),
  // At most 7 days: the stored refresh token must be rewritten long before its 90 days run out (app-user.ts).
  REFRESH_TOKEN_WRITE_INTERVAL_MINUTES: intSetting('REFRESH_TOKEN_WRITE_INTERVAL_MINUTES', 720, 0, 10_080),
  // Read by the Functions host itself (`%REFRESH_TOKEN_RENEWAL_SCHEDULE%`); checked here so health shows a bad one.
  REFRESH_TOKEN_RENEWAL_SCHEDULE: optionalText.transform((raw, ctx) => {
    if (raw === undefined) return DEFAULT_REFRESH_TOKEN_RENEWAL_SCHEDULE;
    try {
      parseNcrontab(raw);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `REFRESH_TOKEN_RENEWAL_SCHEDULE: ${(error as Error).message}` });
      return z.NEVER;
    }
    return raw;
  }),
  UPSTREAM_BUDGET_MS: intSetting('UPSTREAM_BUDGET_MS', 60_000, 1_000, 110_000),
  UPSTREAM_REQUEST_TIMEOUT_MS: intSetting('UPSTREAM_REQUEST_TIMEOUT_MS', 15_000, 100, 110_000),
  UPSTREAM_MAX_RETRIES: intSetting('UPSTREAM_MAX_RETRIES', 4, 0, 10),
  CONCURRENCY_MAX_RETRIES: intSetting('CONCURRENCY_MAX_RETRIES', 4, 0, 10),
  RETRY_BASE_DELAY_MS: intSetting('RETRY_BASE_DELAY_MS', 200, 1, 10_000),
  RETRY_MAX_DELAY_MS: intSetting('RETRY_MAX_DELAY_MS', 10_000, 1, 60_000),
  UPSTREAM_CONNECTIONS: intSetting('UPSTREAM_CONNECTIONS', 32, 1, 1024),
  MAX_BODY_BYTES: intSetting('MAX_BODY_BYTES', 65_536, 1_024, 1_048_576),
  MAX_CLOCK_SKEW_SECONDS: intSetting('MAX_CLOCK_SKEW_SECONDS', 300, 0, 86_400),
  // Unset or "" (an empty app setting): signatures are off. Anything else must hold at least one
  // well-formed secret: a list that comes out empty (",", blanks, a Key Vault reference resolving to
  // blanks) would otherwise turn verification off without a word.
  WEBHOOK_SECRETS: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return [];
      const secrets = raw.split(/[\s,]+/).filter(Boolean);
      if (secrets.length === 0) {
        ctx.addIssue({
          code: 'custom',
          message:
            'WEBHOOK_SECRETS is set but holds no secret (only blanks or separators): set whsec_… secrets, or remove the setting to turn signatures off',
        });
        return z.NEVER;
      }
      for (const [i, secret] of secrets.entries()) {
        if (!isWebhookSecret(secret)) {
          // Never echo the secret itself.
          ctx.addIssue({
            code: 'custom',
            message: `WEBHOOK_SECRETS entry ${i + 1} is not a Standard Webhooks secret (whsec_ + canonical base64 of 24 to 64 bytes)`,
          });
          return z.NEVER;
        }
      }
      return secrets;
    }),
  IDEMPOTENCY_STORE: z
    .string()
    .optional()
    .transform((v) => v?.trim() || 'table')
    .pipe(z.enum(['table', 'memory'], 'IDEMPOTENCY_STORE must be table or memory')),
  IDEMPOTENCY_TABLE_NAME: optionalText.pipe(
    z
      .string()
      .regex(
        /^[A-Za-z][A-Za-z0-9]{2,62}$/,
        'IDEMPOTENCY_TABLE_NAME must be 3-63 letters and digits, starting with a letter',
      )
      .optional(),
  ),
  IDEMPOTENCY_RETENTION_SECONDS: intSetting('IDEMPOTENCY_RETENTION_SECONDS', 259_200, 1, 31_536_000),
  IDEMPOTENCY_WAIT_MS: intSetting('IDEMPOTENCY_WAIT_MS', 10_000, 0, 60_000),
  AzureWebJobsStorage: optionalText,
  AzureWebJobsStorage__tableServiceUri: serviceUrl('AzureWebJobsStorage__tableServiceUri', undefined, {
    httpOnLoopback: false,
  }),
  AzureWebJobsStorage__queueServiceUri: serviceUrl('AzureWebJobsStorage__queueServiceUri', undefined, {
    httpOnLoopback: false,
  }),
  AzureWebJobsStorage__clientId: optionalText,
  // Asynchronous delivery (docs/async-delivery.md).
  DEFAULT_DELIVERY: z
    .string()
    .optional()
    .transform((v) => v?.trim() || 'sync')
    .pipe(z.enum(['sync', 'async'], 'DEFAULT_DELIVERY must be sync or async')),
  // At most 7 days: the longest a queue message may stay invisible (https://learn.microsoft.com/rest/api/storageservices/put-message).
  ASYNC_MAX_AGE_SECONDS: intSetting('ASYNC_MAX_AGE_SECONDS', 86_400, 1, 604_800),
  ASYNC_RETRY_MIN_SECONDS: intSetting('ASYNC_RETRY_MIN_SECONDS', 30, 1, 3_600),
  ASYNC_RETRY_MAX_SECONDS: intSetting('ASYNC_RETRY_MAX_SECONDS', 900, 1, 86_400),
  ASYNC_POLL_SECONDS: intSetting('ASYNC_POLL_SECONDS', 5, 1, 600),
  // Queue names: https://learn.microsoft.com/rest/api/storageservices/naming-queues-and-metadata; at most 56
  // characters so that `<name>-poison` (the host's poison queue) is a queue name too.
  ASYNC_QUEUE_NAME: optionalText
    .pipe(
      z
        .string()
        .refine(
          (name) => /^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/.test(name) && name.length >= 3 && name.length <= 56,
          'ASYNC_QUEUE_NAME must be 3-56 lowercase letters, digits and single dashes, starting and ending with a letter or digit (56 at most, so that <name>-poison is a queue name too)',
        )
        .optional(),
    )
    .transform((v) => v ?? DEFAULT_QUEUE_NAME),
  // CRM stages → status (docs/stages.md): a preset or a JSON object; unset, an event's `stage` is a 400.
  STAGE_MAP: optionalText.transform((raw, ctx): StageMap | undefined => {
    if (raw === undefined) return undefined;
    const parsed = parseStageMap(raw);
    if ('map' in parsed) return parsed.map;
    for (const message of parsed.problems) ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  }),
  // Telemetry (docs/telemetry.md): unset, nothing of Application Insights is loaded.
  APPLICATIONINSIGHTS_CONNECTION_STRING: optionalText,
  // `Authorization=AAD` (optionally `;ClientId=<user-assigned identity>`): ingestion with Entra ID.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: optionalText,
});

/** Every setting the app reads and validates (the infrastructure templates are checked against this list). */
export const CONFIGURATION_VARIABLES: readonly string[] = Object.keys(environmentSchema.shape);

export interface Config {
  partnerCenter: {
    /** `https://api.partner.microsoft.com` by default. */
    origin: string;
    /** Path prefix before `/v1.0/...` (empty for the real service). */
    basePath: string;
    loopback: boolean;
    scope: string;
    connections: number;
    /** `PARTNER_CENTER_WRITE_METHOD`: `put` (default) or `patch`. */
    writeMethod: 'put' | 'patch';
  };
  identity: { clientId: string | undefined };
  auth: AuthConfig;
  inbound: {
    maxBodyBytes: number;
    /** How far in the future an event's `occurredAt` may be before it is refused. */
    maxClockSkewSeconds: number;
    /** Standard Webhooks secrets (`whsec_…`); empty: signatures are not required. */
    webhookSecrets: string[];
    /** STAGE_MAP: the CRM stages an event's `stage` may name (docs/stages.md); undefined when unset. */
    stageMap?: StageMap | undefined;
  };
  idempotency: IdempotencyConfig;
  /** Asynchronous delivery (docs/async-delivery.md). */
  delivery: DeliveryConfig;
  /** Application Insights; undefined when `APPLICATIONINSIGHTS_CONNECTION_STRING` is unset (nothing of it loads). */
  telemetry: TelemetryConfig | undefined;
  retry: {
    /** Total time one event may spend upstream, retries and waits included. */
    budgetMs: number;
    requestTimeoutMs: number;
    /** Retries of transient failures (429, 5xx, network, timeouts) per event. */
    maxRetries: number;
    /** Re-read/re-merge rounds after 412 Precondition Failed per event. */
    maxConflictRetries: number;
    baseDelayMs: number;
    maxDelayMs: number;
  };
}

/** How the adapter obtains its Partner Center token (docs/authentication.md). */
export type AuthConfig =
  | { mode: 'managed-identity' }
  | {
      /** Secure Application Model: a partner user's refresh token in Key Vault, redeemed and rotated. */
      mode: 'app-user';
      keyVaultUrl: string;
      /** The vault is on loopback (tests): the SDK's challenge-resource check cannot apply to it. */
      keyVaultLoopback: boolean;
      refreshTokenSecretName: string;
      /** e.g. `https://login.microsoftonline.com`. */
      authorityHost: string;
      tenantId: string;
      /** Client id of the app registration the refresh token belongs to. */
      appClientId: string;
      /** federated: a managed-identity token as client assertion; key-vault-secret: a client secret kept in Key Vault. */
      clientAuth: 'federated' | 'key-vault-secret' | 'none';
      clientSecretName: string | undefined;
      /** Write a rotated refresh token back only when the stored version is older than this (0: always). */
      writeBackIntervalMs?: number;
    };

export type IdempotencyConfig = {
  /** How long an event's outcome is remembered. */
  retentionSeconds: number;
  /** How long a duplicate waits for the first copy's result before answering 409 in_progress. */
  waitMs: number;
} & (
  | { store: 'memory' }
  | {
      store: 'table';
      tableName: string;
      /** A connection string (`UseDevelopmentStorage=true` for Azurite), or an identity-based endpoint. */
      connection: { connectionString: string } | { tableServiceUri: string; clientId: string | undefined };
    }
);

export const DEFAULT_IDEMPOTENCY_TABLE = 'referralevents';
export const DEFAULT_QUEUE_NAME = 'referral-updates';

/** The worker's queue as the trigger's registration reads it (ASYNC_QUEUE_NAME; parseConfig validates it). */
export function queueNameOf(env: Readonly<Record<string, string | undefined>>): string {
  return env.ASYNC_QUEUE_NAME?.trim() || DEFAULT_QUEUE_NAME;
}

/** Where the Functions host moves a message after `maxDequeueCount` failed attempts (docs/async-delivery.md). */
export function poisonQueueOf(queueName: string): string {
  return `${queueName}-poison`;
}

/** Asynchronous delivery: the default mode, the retry schedule, and the queue (docs/async-delivery.md). */
export interface DeliveryConfig {
  /** How a request that asks for neither mode is answered (DEFAULT_DELIVERY). */
  default: 'sync' | 'async';
  /** How long after its acceptance an event may still be applied; then it is dead-lettered. */
  maxAgeSeconds: number;
  retryMinSeconds: number;
  retryMaxSeconds: number;
  /** `Retry-After` of a `202`. */
  pollSeconds: number;
  queueName: string;
  /** `<queueName>-poison`. */
  poisonQueueName: string;
  /** A connection string (Azurite's locally), or an identity-based endpoint; undefined: no asynchronous delivery. */
  queue: { connectionString: string } | { queueServiceUri: string; clientId: string | undefined } | undefined;
}

export interface TelemetryConfig {
  connectionString: string;
  /**
   * `entra`: ingestion authenticated with a managed-identity token (`APPLICATIONINSIGHTS_AUTHENTICATION_STRING=
   * Authorization=AAD[;ClientId=…]`), required when the component has local authentication disabled.
   */
  ingestion: { auth: 'key' } | { auth: 'entra'; clientId: string | undefined };
}

/** `Key=value;Key=value` (connection-string syntax), keys lower-cased. */
function keyValuePairs(text: string): Map<string, string> {
  return new Map(
    text
      .split(';')
      .filter((part) => part.includes('='))
      .map((part) => {
        const at = part.indexOf('=');
        return [part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim()] as const;
      }),
  );
}

/** `Authorization=AAD` with an optional `ClientId=<user-assigned identity>`, as the Functions host reads it. */
function parseTelemetry(
  connectionString: string | undefined,
  authentication: string | undefined,
  problems: string[],
): TelemetryConfig | undefined {
  if (connectionString === undefined) {
    if (authentication !== undefined)
      problems.push(
        'APPLICATIONINSIGHTS_AUTHENTICATION_STRING is set but APPLICATIONINSIGHTS_CONNECTION_STRING is not',
      );
    return undefined;
  }
  const parts = keyValuePairs(connectionString);
  // Never echo the connection string: it carries the instrumentation key.
  if (!parts.get('instrumentationkey')) {
    problems.push('APPLICATIONINSIGHTS_CONNECTION_STRING must contain InstrumentationKey=…');
    return undefined;
  }
  if (authentication === undefined) return { connectionString, ingestion: { auth: 'key' } };
  const fields = keyValuePairs(authentication);
  if (
    fields.get('authorization')?.toUpperCase() !== 'AAD' ||
    [...fields.keys()].some((k) => k !== 'authorization' && k !== 'clientid')
  ) {
    problems.push(
      'APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be Authorization=AAD, optionally with ;ClientId=<identity client id>',
    );
    return undefined;
  }
  return { connectionString, ingestion: { auth: 'entra', clientId: fields.get('clientid') || undefined } };
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/** Validates the environment. Pure: the caller decides when (once, at load) and what to do with problems. */
export function parseConfig(env: Readonly<Record<string, string | undefined>>): ConfigResult {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.map((issue) => issue.message) };
  const e = parsed.data;
  const problems: string[] = [];
  if (e.RETRY_BASE_DELAY_MS > e.RETRY_MAX_DELAY_MS)
    problems.push('RETRY_BASE_DELAY_MS must not exceed RETRY_MAX_DELAY_MS');
  let auth: AuthConfig = { mode: 'managed-identity' };
  if (e.PARTNER_CENTER_AUTH === 'app-user') {
    const required = {
      KEY_VAULT_URL: e.KEY_VAULT_URL,
      PARTNER_TENANT_ID: e.PARTNER_TENANT_ID,
      APP_REGISTRATION_CLIENT_ID: e.APP_REGISTRATION_CLIENT_ID,
    };
    for (const [name, value] of Object.entries(required)) {
      if (value === undefined) problems.push(`${name} is required when PARTNER_CENTER_AUTH=app-user`);
    }
    // Only a user-assigned identity can be an app registration's federated credential
    // (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
    if (e.APP_CLIENT_AUTH === 'federated' && !e.AZURE_CLIENT_ID) {
      problems.push(
        'AZURE_CLIENT_ID (the client id of the user-assigned managed identity) is required when PARTNER_CENTER_AUTH=app-user and APP_CLIENT_AUTH=federated: only a user-assigned identity can be the federated credential of the app registration',
      );
    }
    if (e.APP_CLIENT_AUTH === 'key-vault-secret' && !e.APP_CLIENT_SECRET_NAME) {
      problems.push('APP_CLIENT_SECRET_NAME is required when APP_CLIENT_AUTH=key-vault-secret');
    }
    if (e.KEY_VAULT_URL && e.PARTNER_TENANT_ID && e.APP_REGISTRATION_CLIENT_ID && e.AZURE_AUTHORITY_HOST) {
      auth = {
        mode: 'app-user',
        keyVaultUrl: `${e.KEY_VAULT_URL.origin}${e.KEY_VAULT_URL.basePath}`,
        keyVaultLoopback: e.KEY_VAULT_URL.loopback,
        refreshTokenSecretName: e.REFRESH_TOKEN_SECRET_NAME ?? DEFAULT_REFRESH_TOKEN_SECRET_NAME,
        authorityHost: `${e.AZURE_AUTHORITY_HOST.origin}${e.AZURE_AUTHORITY_HOST.basePath}`,
        tenantId: e.PARTNER_TENANT_ID,
        appClientId: e.APP_REGISTRATION_CLIENT_ID,
        clientAuth: e.APP_CLIENT_AUTH,
        clientSecretName: e.APP_CLIENT_SECRET_NAME,
        writeBackIntervalMs: e.REFRESH_TOKEN_WRITE_INTERVAL_MINUTES * 60_000,
      };
    }
  }
  let idempotency: IdempotencyConfig = {
    store: 'memory',
    retentionSeconds: e.IDEMPOTENCY_RETENTION_SECONDS,
    waitMs: e.IDEMPOTENCY_WAIT_MS,
  };
  if (e.IDEMPOTENCY_STORE === 'table') {
    const uri = e.AzureWebJobsStorage__tableServiceUri;
    const connection = uri
      ? {
          tableServiceUri: `${uri.origin}${uri.basePath}`,
          clientId: e.AzureWebJobsStorage__clientId ?? e.AZURE_CLIENT_ID,
        }
      : e.AzureWebJobsStorage
        ? { connectionString: e.AzureWebJobsStorage }
        : undefined;
    if (connection) {
      idempotency = {
        ...idempotency,
        store: 'table',
        tableName: e.IDEMPOTENCY_TABLE_NAME ?? DEFAULT_IDEMPOTENCY_TABLE,
        connection,
      };
    } else {
      problems.push(
        'IDEMPOTENCY_STORE=table needs AzureWebJobsStorage__tableServiceUri (identity-based) or AzureWebJobsStorage (a connection string); set IDEMPOTENCY_STORE=memory to keep outcomes in memory instead',
      );
    }
  }
  if (e.ASYNC_RETRY_MIN_SECONDS > e.ASYNC_RETRY_MAX_SECONDS)
    problems.push('ASYNC_RETRY_MIN_SECONDS must not exceed ASYNC_RETRY_MAX_SECONDS');
  const queueUri = e.AzureWebJobsStorage__queueServiceUri;
  const delivery: DeliveryConfig = {
    default: e.DEFAULT_DELIVERY,
    maxAgeSeconds: e.ASYNC_MAX_AGE_SECONDS,
    retryMinSeconds: e.ASYNC_RETRY_MIN_SECONDS,
    retryMaxSeconds: e.ASYNC_RETRY_MAX_SECONDS,
    pollSeconds: e.ASYNC_POLL_SECONDS,
    queueName: e.ASYNC_QUEUE_NAME,
    poisonQueueName: poisonQueueOf(e.ASYNC_QUEUE_NAME),
    // The deliveries live in the idempotency table: no Table store, no asynchronous delivery.
    queue:
      e.IDEMPOTENCY_STORE !== 'table'
        ? undefined
        : queueUri
          ? {
              queueServiceUri: `${queueUri.origin}${queueUri.basePath}`,
              clientId: e.AzureWebJobsStorage__clientId ?? e.AZURE_CLIENT_ID,
            }
          : e.AzureWebJobsStorage
            ? { connectionString: e.AzureWebJobsStorage }
            : undefined,
  };
  if (e.DEFAULT_DELIVERY === 'async' && e.IDEMPOTENCY_STORE === 'memory') {
    problems.push(
      'DEFAULT_DELIVERY=async needs IDEMPOTENCY_STORE=table: accepted events are kept in the Table store until they are applied; set IDEMPOTENCY_STORE=table (with AzureWebJobsStorage) or DEFAULT_DELIVERY=sync',
    );
  } else if (e.DEFAULT_DELIVERY === 'async' && idempotency.store === 'table' && delivery.queue === undefined) {
    problems.push(
      'DEFAULT_DELIVERY=async needs a queue: set AzureWebJobsStorage__queueServiceUri (identity-based) or AzureWebJobsStorage (a connection string), or DEFAULT_DELIVERY=sync',
    );
  }
  const telemetry = parseTelemetry(
    e.APPLICATIONINSIGHTS_CONNECTION_STRING,
    e.APPLICATIONINSIGHTS_AUTHENTICATION_STRING,
    problems,
  );
  if (problems.length > 0) return { ok: false, problems };
  const partnerCenter = e.PARTNER_CENTER_BASE_URL as ServiceUrl;
  return {
    ok: true,
    config: {
      partnerCenter: {
        ...partnerCenter,
        scope: PARTNER_CENTER_SCOPE,
        connections: e.UPSTREAM_CONNECTIONS,
        writeMethod: e.PARTNER_CENTER_WRITE_METHOD,
      },
      identity: { clientId: e.AZURE_CLIENT_ID },
      auth,
      inbound: {
        maxBodyBytes: e.MAX_BODY_BYTES,
        maxClockSkewSeconds: e.MAX_CLOCK_SKEW_SECONDS,
        webhookSecrets: e.WEBHOOK_SECRETS,
        stageMap: e.STAGE_MAP,
      },
      idempotency,
      delivery,
      telemetry,
      retry: {
        budgetMs: e.UPSTREAM_BUDGET_MS,
        requestTimeoutMs: e.UPSTREAM_REQUEST_TIMEOUT_MS,
        maxRetries: e.UPSTREAM_MAX_RETRIES,
        maxConflictRetries: e.CONCURRENCY_MAX_RETRIES,
        baseDelayMs: e.RETRY_BASE_DELAY_MS,
        maxDelayMs: e.RETRY_MAX_DELAY_MS,
      },
    },
  };
}

let loaded: ConfigResult | undefined;

/** The process configuration, validated on first call and then reused. */
export function loadConfig(): ConfigResult {
  loaded ??= parseConfig(process.env);
  return loaded;
}
