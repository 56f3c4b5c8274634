/**
 * A loopback managed-identity endpoint, the App Service / Functions flavour that `@azure/identity`
 * calls when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set (docs/azure-functions.md#managed-identity-endpoint):
 *
 *   GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=<id>]
 *   x-identity-header: {IDENTITY_HEADER}
 *
 * It answers with `expires_on` in epoch seconds and echoes `resource`, the two details that decide
 * whether the SDK caches the token. It lets the real `@azure/identity` code path run with no Azure and
 * no traffic to 169.254.169.254 (the cloud metadata address, which every local run must never reach).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface IdentityEmulatorOptions {
  port?: number;
  /** Lifetime of issued tokens. */
  lifetimeSeconds?: number;
}

export interface IssuedToken {
  token: string;
  resource: string | null;
  clientId: string | null;
}

export interface IdentityEmulator {
  /** Value for `IDENTITY_ENDPOINT`. */
  readonly endpoint: string;
  /** Value for `IDENTITY_HEADER`. */
  readonly header: string;
  /** Every token handed out, in order. */
  readonly issued: ReadonlyArray<IssuedToken>;
  /** Answer the next `count` token requests with this HTTP status instead of a token. */
  failNext(count: number, status?: number): void;
  isIssued(token: string): boolean;
  close(): Promise<void>;
}

export async function startIdentityEmulator(options: IdentityEmulatorOptions = {}): Promise<IdentityEmulator> {
  const header = randomBytes(16).toString('hex');
  const lifetimeSeconds = options.lifetimeSeconds ?? 3600;
  const issued: IssuedToken[] = [];
  const tokens = new Set<string>();
  let failures: { count: number; status: number } = { count: 0, status: 500 };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (url.pathname !== '/msi/token' || req.method !== 'GET') return reply(404, { error: 'not_found' });
    if (req.headers['x-identity-header'] !== header) {
      return reply(401, { error: 'unauthorized', error_description: 'x-identity-header is missing or wrong' });
    }
    if (failures.count > 0) {
      failures.count--;
      return reply(failures.status, { error: 'unavailable', error_description: 'injected failure' });
    }
    const resource = url.searchParams.get('resource');
    if (!resource) return reply(400, { error: 'invalid_request', error_description: 'resource is required' });
    const token = `emulated-mi-${randomUUID()}`;
    tokens.add(token);
    issued.push({ token, resource, clientId: url.searchParams.get('client_id') });
    const expiresOn = Math.floor(Date.now() / 1000) + lifetimeSeconds;
    return reply(200, {
      access_token: token,
      token_type: 'Bearer',
      resource,
      expires_on: String(expiresOn),
      client_id: url.searchParams.get('client_id') ?? '00000000-0000-0000-0000-000000000000',
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}/msi/token`,
    header,
    issued,
    failNext(count, status = 500) {
      failures = { count, status };
    },
    isIssued: (token) => tokens.has(token),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
