/** `@azure/data-tables` for table-store.ts, which imports this module lazily (like idempotency/data-tables.ts). */
export { odata, TableClient } from '@azure/data-tables';
