/**
 * undici for client.ts, which imports this module lazily: a dynamic `import()` of an app module that
 * imports the package statically gives the deploy bundle the package's named exports (undici is
 * CommonJS; a chunk made for `import('undici')` itself would export only `default`).
 */
export { Pool } from 'undici';
