/**
 * Keep the partner's refresh token alive (app-user mode). Entra lets a refresh token lapse after 90 days
 * without use (https://learn.microsoft.com/entra/identity-platform/refresh-tokens), and only events
 * redeem it, so a quiet season would kill it. A timer (functions/refresh-token-keep-alive.ts) runs this
 * on a schedule: one redemption that bypasses the access-token cache, written back to Key Vault when the
 * stored version is old enough (auth/app-user.ts), with a log line an alert rule can watch.
 *
 * Several instances may fire the same occurrence (the Functions host normally runs one per schedule, but
 * scale-out and restarts can overlap). That is harmless: each instance redeems at most once at a time
 * (single flight), Entra does not revoke the token redeemed, and the Key Vault write-back happens only when
 * the stored version is older than the write-back interval, so a few redemptions cost no extra versions.
 */
import type { TokenProvider } from '../auth/token-provider.js';
import type { Config } from '../config.js';
import { AdapterError } from '../core/errors.js';

export interface RenewalLogger {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface RenewalRuntime {
  config: Config;
  tokens: TokenProvider;
}

export type RenewalOutcome = 'renewed' | 'not-needed' | 'failed';

/** Log codes of the keep-alive: alert on REFRESH_TOKEN_RENEWAL_FAILED. */
export const RENEWAL_LOG_CODES = {
  renewed: 'REFRESH_TOKEN_RENEWED',
  notNeeded: 'REFRESH_TOKEN_RENEWAL_NOT_NEEDED',
  failed: 'REFRESH_TOKEN_RENEWAL_FAILED',
} as const;

let toldNotNeeded = false;

function line(level: string, code: string, detail: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ event: 'refresh-token-renewal', level, code, detail, ...extra });
}

export async function renewRefreshToken(runtime: () => RenewalRuntime, logger: RenewalLogger): Promise<RenewalOutcome> {
  let tokens: TokenProvider;
  try {
    const current = runtime();
    if (current.config.auth.mode !== 'app-user' || !current.tokens.renew) {
      if (!toldNotNeeded) {
        toldNotNeeded = true;
        logger.log(
          line(
            'info',
            RENEWAL_LOG_CODES.notNeeded,
            'PARTNER_CENTER_AUTH is not app-user: there is no refresh token to keep alive, the keep-alive timer does nothing (said once per instance).',
          ),
        );
      }
      return 'not-needed';
    }
    tokens = current.tokens;
  } catch (error) {
    logger.error(line('error', RENEWAL_LOG_CODES.failed, describe(error), { cause: causeCode(error) }));
    return 'failed';
  }
  try {
    await tokens.renew?.();
  } catch (error) {
    logger.error(line('error', RENEWAL_LOG_CODES.failed, describe(error), { cause: causeCode(error) }));
    return 'failed';
  }
  logger.log(line('info', RENEWAL_LOG_CODES.renewed, 'The refresh token was redeemed: it stays valid for 90 days.'));
  return 'renewed';
}

function describe(error: unknown): string {
  const reason = error instanceof AdapterError ? error.message : error instanceof Error ? error.name : 'unknown error';
  return `The refresh token could not be redeemed; it lapses after 90 days without a redemption. ${reason}`;
}

function causeCode(error: unknown): string {
  if (error instanceof AdapterError) return error.logCode ?? error.code;
  return error instanceof Error ? error.name : 'Error';
}
