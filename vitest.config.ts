import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The Key Vault emulator speaks TLS with a test CA (the Azure SDK refuses bearer tokens over plain http).
// Node reads NODE_EXTRA_CA_CERTS only at process start: set here, it reaches every test worker and,
// through them, every child process the tests start. See dev/emulators/tls/README.md.
process.env.NODE_EXTRA_CA_CERTS = fileURLToPath(new URL('./dev/emulators/tls/test-ca.pem', import.meta.url));

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['dev/support/loopback-guard.mjs'],
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
