/**
 * What an Entra refusal means for the stored refresh token, and what the admin must do about it
 * (docs/authentication.md#failures-and-their-fixes). Entra's `error` (`invalid_grant`, …) lumps very
 * different problems together; the AADSTS number (`error_codes`) tells them apart
 * (https://learn.microsoft.com/entra/identity-platform/reference-error-codes). Microsoft warns that the
 * numbers can change, so an unknown one falls back on the OAuth `error`.
 *
 * `recovery` says what the adapter does next:
 * - `new-sign-in`: the refresh token is dead; only a new bootstrap helps. Fail fast, re-read Key Vault
 *   once a minute for a new version.
 * - `retry-later`: the same token may work again without a new sign-in (a Conditional Access block that
 *   lifts, consent granted again, a user re-enabled, a federated credential still propagating). Probe Entra
 *   again on a backoff instead of latching the token as dead.
 */
import type { EntraError } from './entra.js';

export interface EntraRefusal {
  logCode: string;
  /** For the admin: what it means and what to do. Never quotes Entra's description (it can echo request values). */
  detail: string;
  recovery: 'new-sign-in' | 'retry-later';
}

const BOOTSTRAP =
  'A partner admin must run "npm run auth:bootstrap" to sign in again with MFA; the adapter picks up the new token by itself.';

/** Propagation of a new federated identity credential: Entra answers these for several minutes. */
export const FEDERATION_MISMATCH_CODES = [70021, 700211, 700212, 700213, 7002121];

export function classifyEntraRefusal(error: EntraError, appClientId: string): EntraRefusal {
  const codes = error.errorCodes;
  const has = (...wanted: number[]) => wanted.some((code) => codes.includes(code));
  const aadsts = codes.length > 0 ? ` (AADSTS${codes.join(', AADSTS')})` : '';
  if (has(53003, 530032)) {
    return {
      logCode: 'PARTNER_CENTER_CONDITIONAL_ACCESS_BLOCKED',
      detail: `Entra refused the refresh token: a Conditional Access policy blocks the service account${aadsts}. Look up the failed sign-in in the partner tenant's sign-in logs (Conditional Access tab) and exclude the service account or this app from that policy (a location policy cannot allow a function app without a fixed outbound IP; a device code flow policy blocks a token first obtained by device code for good). The adapter tries again on its own, with a growing delay.`,
      recovery: 'retry-later',
    };
  }
  if (has(65001)) {
    return {
      logCode: 'PARTNER_CENTER_CONSENT_MISSING',
      detail: `Entra refused the refresh token: consent for app ${appClientId} is missing or was removed${aadsts}. A partner admin must grant admin consent again for its Partner Center permissions (Entra admin center → App registrations → API permissions → Grant admin consent). The adapter tries again on its own, with a growing delay.`,
      recovery: 'retry-later',
    };
  }
  if (has(50057, 50053)) {
    return {
      logCode: 'PARTNER_CENTER_USER_DISABLED',
      detail: `Entra refused the refresh token: the service account is disabled or locked${aadsts}. Enable or unblock the user in the partner tenant (a locked account unlocks by itself after a while). The adapter tries again on its own, with a growing delay; if the user was deleted instead, run the bootstrap with another one.`,
      recovery: 'retry-later',
    };
  }
  if (has(...FEDERATION_MISMATCH_CODES)) {
    return {
      logCode: 'APP_CLIENT_FEDERATION_MISMATCH',
      detail: `Entra found no federated identity credential on app ${appClientId} matching the managed identity's token${aadsts}. A credential created in the last minutes may not have propagated yet: the adapter tries again on its own, with a growing delay. If it persists, check the credential: issuer https://login.microsoftonline.com/{tenant}/v2.0 of the identity's tenant, subject the managed identity's object (principal) id, the token-exchange audience of the cloud (api://AzureADTokenExchange in the public cloud), and AZURE_CLIENT_ID set to that user-assigned identity.`,
      recovery: 'retry-later',
    };
  }
  if (has(70043)) {
    return {
      logCode: 'PARTNER_CENTER_SIGN_IN_FREQUENCY',
      detail: `Entra refused the refresh token: a Conditional Access sign-in frequency policy caps its lifetime${aadsts}. Exclude the service account from sign-in frequency policies, then run "npm run auth:bootstrap" again.`,
      recovery: 'new-sign-in',
    };
  }
  if (has(50076, 50078, 50079)) {
    return {
      logCode: 'ENTRA_MFA_REQUIRED',
      detail: `Entra refused the refresh token: a policy now requires a fresh multifactor sign-in of the service account${aadsts}. Make sure the account is registered for MFA, then run "npm run auth:bootstrap" again and complete MFA.`,
      recovery: 'new-sign-in',
    };
  }
  return {
    logCode: 'PARTNER_CENTER_REFRESH_TOKEN_INVALID',
    detail: `Entra refused the stored Partner Center refresh token: expired, revoked, or unused for 90 days${aadsts}. ${BOOTSTRAP}`,
    recovery: 'new-sign-in',
  };
}

/** Whether a refusal of `error` belongs to the classification above (rather than to a client-credential problem). */
export function isClassifiedRefusal(error: EntraError): boolean {
  if (error.error === 'invalid_grant') return true;
  return error.errorCodes.some((code) => FEDERATION_MISMATCH_CODES.includes(code));
}
