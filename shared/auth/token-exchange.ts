/**
 * The audience of the managed-identity token that the app registration presents as client assertion
 * (a federated identity credential). Each Entra cloud has its own, and the credential must carry the same
 * one; accessing another cloud is not supported
 * (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
 * Derived from the authority host (`AZURE_AUTHORITY_HOST`), which names the cloud
 * (https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud).
 */

const AUDIENCES: ReadonlyArray<{ hosts: readonly string[]; audience: string }> = [
  { hosts: ['login.microsoftonline.us', 'login.usgovcloudapi.net'], audience: 'api://AzureADTokenExchangeUSGov' },
  {
    hosts: ['login.chinacloudapi.cn', 'login.partner.microsoftonline.cn'],
    audience: 'api://AzureADTokenExchangeChina',
  },
];

export const PUBLIC_CLOUD_TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

/** `api://AzureADTokenExchange…` for the cloud of `authorityHost`; the public cloud for any other host. */
export function tokenExchangeAudience(authorityHost: string): string {
  let host: string;
  try {
    host = new URL(authorityHost).hostname.toLowerCase();
  } catch {
    return PUBLIC_CLOUD_TOKEN_EXCHANGE_AUDIENCE;
  }
  return AUDIENCES.find((cloud) => cloud.hosts.includes(host))?.audience ?? PUBLIC_CLOUD_TOKEN_EXCHANGE_AUDIENCE;
}

/** The scope to ask the managed identity for: the audience plus `/.default`. */
export function tokenExchangeScope(authorityHost: string): string {
  return `${tokenExchangeAudience(authorityHost)}/.default`;
}
