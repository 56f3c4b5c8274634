/**
 * Configuration, validated once with zod when the app loads. Every setting, its default and its limits
 * are listed here (and in the README's configuration table).
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export const DEFAULT_PARTNER_CENTER_BASE_URL = 'https://api.partner.microsoft.com';
export const PARTNER_CENTER_SCOPE = 'https://api.partner.microsoft.com/.default';

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
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

const baseUrl = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    const value = raw?.trim() || DEFAULT_PARTNER_CENTER_BASE_URL;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `PARTNER_CENTER_BASE_URL is not a URL: "${value}"` });
      return z.NEVER;
    }
    const loopback = isLoopbackHost(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
      ctx.addIssue({
        code: 'custom',
        message: `PARTNER_CENTER_BASE_URL must use https (plain http is allowed only for a loopback host such as 127.0.0.1): "${value}"`,
      });
      return z.NEVER;
    }
    if (url.search || url.hash || url.username || url.password) {
      ctx.addIssue({
        code: 'custom',
        message: 'PARTNER_CENTER_BASE_URL must not carry a query, fragment or credentials',
      });
      return z.NEVER;
    }
    return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, ''), loopback };
  });

const environmentSchema = z.object({
  PARTNER_CENTER_BASE_URL: baseUrl,
  AZURE_CLIENT_ID: z
    .string()
    .optional()
    .transform((v) => v?.trim() || undefined),
  UPSTREAM_BUDGET_MS: intSetting('UPSTREAM_BUDGET_MS', 60_000, 1_000, 110_000),
  UPSTREAM_REQUEST_TIMEOUT_MS: intSetting('UPSTREAM_REQUEST_TIMEOUT_MS', 15_000, 100, 110_000),
  UPSTREAM_MAX_RETRIES: intSetting('UPSTREAM_MAX_RETRIES', 4, 0, 10),
  CONCURRENCY_MAX_RETRIES: intSetting('CONCURRENCY_MAX_RETRIES', 4, 0, 10),
  RETRY_BASE_DELAY_MS: intSetting('RETRY_BASE_DELAY_MS', 200, 1, 10_000),
  RETRY_MAX_DELAY_MS: intSetting('RETRY_MAX_DELAY_MS', 10_000, 1, 60_000),
  UPSTREAM_CONNECTIONS: intSetting('UPSTREAM_CONNECTIONS', 32, 1, 1024),
});

export interface Config {
  partnerCenter: {
    /** `https://api.partner.microsoft.com` by default. */
    origin: string;
    /** Path prefix before `/v1.0/...` (empty for the real service). */
    basePath: string;
    loopback: boolean;
    scope: string;
    connections: number;
  };
  identity: { clientId: string | undefined };
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

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/** Validates the environment. Pure: the caller decides when (once, at load) and what to do with problems. */
export function parseConfig(env: Readonly<Record<string, string | undefined>>): ConfigResult {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.map((issue) => issue.message) };
  const e = parsed.data;
  if (e.RETRY_BASE_DELAY_MS > e.RETRY_MAX_DELAY_MS) {
    return { ok: false, problems: ['RETRY_BASE_DELAY_MS must not exceed RETRY_MAX_DELAY_MS'] };
  }
  return {
    ok: true,
    config: {
      partnerCenter: {
        ...e.PARTNER_CENTER_BASE_URL,
        scope: PARTNER_CENTER_SCOPE,
        connections: e.UPSTREAM_CONNECTIONS,
      },
      identity: { clientId: e.AZURE_CLIENT_ID },
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
