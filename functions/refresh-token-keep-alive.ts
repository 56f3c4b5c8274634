/**
 * Timer: redeem the App+User refresh token on a schedule so that it never lapses in a quiet season
 * (docs/authentication.md#keeping-the-refresh-token-alive). Every 12 hours by default; the app setting
 * REFRESH_TOKEN_RENEWAL_SCHEDULE (NCRONTAB, six fields, UTC) replaces it, read by the Functions host itself
 * through the `%SETTING%` syntax. In managed-identity mode it does nothing and says so once.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { DEFAULT_REFRESH_TOKEN_RENEWAL_SCHEDULE } from '../shared/config.js';
import { getRuntime } from '../shared/runtime.js';
import { renewRefreshToken } from '../shared/use-cases/renew-refresh-token.js';

export async function refreshTokenKeepAlive(_timer: Timer, context: InvocationContext): Promise<void> {
  await renewRefreshToken(getRuntime, context);
}

app.timer('refresh-token-keep-alive', {
  // The host fails to index a function whose `%SETTING%` is unset: use it only when it is set.
  schedule: process.env.REFRESH_TOKEN_RENEWAL_SCHEDULE?.trim()
    ? '%REFRESH_TOKEN_RENEWAL_SCHEDULE%'
    : DEFAULT_REFRESH_TOKEN_RENEWAL_SCHEDULE,
  runOnStartup: false,
  handler: refreshTokenKeepAlive,
});
