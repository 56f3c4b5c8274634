/**
 * `GET /api/health`: version, runtime, upstream target, token state and configuration problems.
 * Cheap (no I/O, nothing imported lazily) and free of secrets.
 */
import { loadConfig } from './config.js';
import { peekRuntime } from './runtime.js';
import { VERSION } from './version.js';

export interface HealthReport {
  status: 'ok' | 'misconfigured';
  version: string;
  node: string;
  partnerCenter: { baseUrl: string; loopback: boolean } | null;
  auth: {
    mode: 'managed-identity';
    userAssignedClientId: string | null;
    tokenRequests: number;
    lastTokenSuccessAt: string | null;
    lastTokenFailureAt: string | null;
    lastTokenFailure: string | null;
  } | null;
  problems: string[];
}

export function healthReport(): HealthReport {
  const result = loadConfig();
  const base = { version: VERSION, node: process.version };
  if (!result.ok) {
    return { status: 'misconfigured', ...base, partnerCenter: null, auth: null, problems: result.problems };
  }
  const { partnerCenter, identity } = result.config;
  const tokens = peekRuntime()?.tokens.status;
  return {
    status: 'ok',
    ...base,
    partnerCenter: { baseUrl: `${partnerCenter.origin}${partnerCenter.basePath}`, loopback: partnerCenter.loopback },
    auth: {
      mode: 'managed-identity',
      userAssignedClientId: identity.clientId ?? null,
      tokenRequests: tokens?.requests ?? 0,
      lastTokenSuccessAt: tokens?.lastSuccessAt ?? null,
      lastTokenFailureAt: tokens?.lastFailureAt ?? null,
      lastTokenFailure: tokens?.lastFailure ?? null,
    },
    problems: [],
  };
}
