/** `@azure/data-tables` for the Table stores (table-client.ts, delivery/table-store.ts), which import this module lazily (see partner-center/undici.ts). */
export { odata, TableClient } from '@azure/data-tables';
