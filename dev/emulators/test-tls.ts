/**
 * The test TLS material in dev/emulators/tls/ (see its README): a server certificate for 127.0.0.1/localhost
 * signed by a throwaway test CA. Emulators that must speak https (the Azure SDK refuses bearer tokens
 * over plain http, and @azure/identity refuses an http authority host) serve it; their clients trust
 * the CA through NODE_EXTRA_CA_CERTS.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A file of dev/emulators/tls/, found by walking up from this module (works from dev/ and dist/dev/), then from the cwd. */
export function testTlsFile(name: 'localhost.pem' | 'localhost.key' | 'test-ca.pem'): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    let dir = start;
    for (;;) {
      const candidate = join(dir, 'dev', 'emulators', 'tls', name);
      if (existsSync(candidate)) return candidate;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  throw new Error(`dev/emulators/tls/${name} not found above ${fileURLToPath(import.meta.url)} or ${process.cwd()}`);
}

/** `cert` and `key` for `https.createServer`. */
export function testServerTls(): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(testTlsFile('localhost.pem')), key: readFileSync(testTlsFile('localhost.key')) };
}
