/** `@azure/data-tables` for table-store.ts, which imports this module lazily (see partner-center/undici.ts). */
export { TableClient } from '@azure/data-tables';
