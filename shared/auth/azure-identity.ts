/** `@azure/identity` for managed-identity.ts, which imports this module lazily (see partner-center/undici.ts). */
export { ManagedIdentityCredential } from '@azure/identity';
