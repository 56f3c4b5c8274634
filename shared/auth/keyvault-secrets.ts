/** `@azure/keyvault-secrets` for key-vault.ts, which imports this module lazily (see partner-center/undici.ts). */
export { SecretClient } from '@azure/keyvault-secrets';
