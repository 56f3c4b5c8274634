/**
 * `GET /api/health`: version, runtime, upstream target, token state, whether signatures are enforced and
 * configuration problems, never a secret. In app-user mode it also reports the age of the stored refresh token (a Key Vault metadata
 * read, cached for five minutes) and warns when it is within 14 days of the 90-day limit.
 */

import type { z } from 'zod';
import type { TokenHealth } from './auth/token-provider.js';
import { loadConfig } from './config.js';
import type { Expect, Extends, healthReportSchema } from './contract/responses.js';
import { getRuntime } from './runtime.js';
import { type TelemetryStatus, telemetryStatus } from './telemetry/telemetry.js';
import { VERSION } from './version.js';

export interface HealthReport {
  /** `warning`: working, but something needs attention soon (see `warnings`). */
  status: 'ok' | 'warning' | 'misconfigured';
  version: string;
  node: string;
  partnerCenter: { baseUrl: string; loopback: boolean; writeMethod: 'put' | 'patch' } | null;
  auth: (TokenHealth & { userAssignedClientId: string | null }) | null;
  /** Application Insights: whether it runs, and how ingestion authenticates; null when misconfigured. */
  telemetry: { status: TelemetryStatus; ingestion: 'key' | 'entra' | null } | null;
  /** Standard Webhooks signatures: whether every event must be signed, and how many secrets (never their values). */
  signatures: { enforced: boolean; secrets: number } | null;
  /** Asynchronous delivery: the default mode, whether it can be used, the queues; null when misconfigured. */
  delivery: { default: 'sync' | 'async'; available: boolean; queue: string; poisonQueue: string } | null;
  problems: string[];
  warnings: string[];
}

/** The report and its documented schema (contract/responses.ts) are the same shape, checked at compile time. */
export type HealthReportTypeChecks = [
  Expect<Extends<z.output<typeof healthReportSchema>, HealthReport>>,
  Expect<Extends<HealthReport, z.output<typeof healthReportSchema>>>,
];

export async function healthReport(): Promise<HealthReport> {
  const result = loadConfig();
  const base = { version: VERSION, node: process.version };
  if (!result.ok) {
    return {
      status: 'misconfigured',
      ...base,
      partnerCenter: null,
      auth: null,
      telemetry: null,
      signatures: null,
      delivery: null,
      problems: result.problems,
      warnings: [],
    };
  }
  const { partnerCenter, identity, telemetry, inbound, idempotency, delivery } = result.config;
  const runtime = getRuntime();
  const tokens = await runtime.tokens.health();
  // The runtime decides whether `202`s can be given (a Table store and a queue connection): health reads its answer.
  const asyncAvailable = runtime.delivery !== undefined;
  const telemetryNow = telemetryStatus();
  const warnings = [
    ...tokens.warnings,
    ...(telemetryNow === 'failed'
      ? ['Application Insights failed to start: the app runs without telemetry (see the start-up log).']
      : []),
    // Table store without a queue connection (an identity-based table endpoint alone): `202`s are refused.
    ...(idempotency.store === 'table' && !asyncAvailable
      ? [
          `Asynchronous delivery is unavailable: no connection for the queue ${delivery.queueName}; set AzureWebJobsStorage__queueServiceUri (identity-based) or AzureWebJobsStorage (a connection string).`,
        ]
      : []),
  ];
  return {
    status: warnings.length > 0 ? 'warning' : 'ok',
    ...base,
    partnerCenter: {
      baseUrl: `${partnerCenter.origin}${partnerCenter.basePath}`,
      loopback: partnerCenter.loopback,
      writeMethod: partnerCenter.writeMethod,
    },
    auth: { ...tokens, userAssignedClientId: identity.clientId ?? null },
    telemetry: { status: telemetryNow, ingestion: telemetry?.ingestion.auth ?? null },
    signatures: { enforced: inbound.webhookSecrets.length > 0, secrets: inbound.webhookSecrets.length },
    delivery: {
      default: delivery.default,
      available: asyncAvailable,
      queue: delivery.queueName,
      poisonQueue: delivery.poisonQueueName,
    },
    problems: [],
    warnings,
  };
}
