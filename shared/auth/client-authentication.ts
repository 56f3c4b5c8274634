/**
 * How the app registration authenticates to Entra when it redeems a refresh token or an authorization
 * code (APP_CLIENT_AUTH): a managed-identity assertion (federated credential, the token-exchange audience of
 * the authority's cloud), a client secret kept in Key Vault (cached for an hour), or nothing (a public
 * client). One implementation for every redemption, so a refresh token is always redeemed by the same kind
 * of client that obtained it (docs/authentication.md).
 */
import type { AbortOptions } from '../core/abort.js';
import { AdapterError } from '../core/errors.js';
import type { AppUserAuth } from './app-user.js';
import type { ClientAuthentication } from './entra.js';
import type { SecretStore } from './key-vault.js';
import { managedIdentityToken } from './managed-identity.js';
import { tokenExchangeScope } from './token-exchange.js';

const CLIENT_SECRET_TTL_MS = 60 * 60_000;

export function createClientAuthentication(
  auth: AppUserAuth,
  managedIdentityClientId: string | undefined,
  secrets: SecretStore,
): (call: AbortOptions) => Promise<ClientAuthentication> {
  let clientSecret: { value: string; until: number } | undefined;
  return async (call) => {
    if (auth.clientAuth === 'none') return { none: true };
    if (auth.clientAuth === 'federated') {
      const scope = tokenExchangeScope(auth.authorityHost);
      const assertion = await managedIdentityToken(managedIdentityClientId, scope, undefined, call);
      return { assertion: assertion.token };
    }
    if (!clientSecret || clientSecret.until < Date.now()) {
      const name = auth.clientSecretName ?? '';
      const secret = await secrets.get(name, call);
      if (!secret?.value) {
        throw new AdapterError(
          'upstream_auth_failed',
          `Key Vault has no client secret in "${name}" (APP_CLIENT_SECRET_NAME).`,
          {
            logCode: 'APP_CLIENT_SECRET_MISSING',
          },
        );
      }
      clientSecret = { value: secret.value, until: Date.now() + CLIENT_SECRET_TTL_MS };
    }
    return { secret: clientSecret.value };
  };
}
