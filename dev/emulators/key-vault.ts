/**
 * A loopback Azure Key Vault, secrets data plane only, for the Secure Application Model path
 * (docs/partner-center-api.md#secure-application-model): the app reads the stored refresh token and writes
 * the rotated one back.
 *
 *   GET /secrets/{name}[/]            latest version        PUT /secrets/{name}   new version
 *   GET /secrets/{name}/{version}     one version           GET /secrets/{name}/versions, GET /secrets
 *
 * HTTPS on 127.0.0.1 with dev/emulators/tls/localhost.pem (the Azure SDK refuses to send a bearer token over http); the
 * client trusts dev/emulators/tls/test-ca.pem through NODE_EXTRA_CA_CERTS. Authentication is Key Vault's challenge
 * flow, which the real `@azure/keyvault-secrets` SecretClient relies on: its FIRST request on every client
 * goes out without a token (and, for a PUT, without a body); the 401 and its `WWW-Authenticate` header tell it
 * which resource to ask the credential for; then it repeats the request with the token. Because the vault
 * host is 127.0.0.1 rather than *.vault.azure.net, the client must be created with
 * `disableChallengeResourceVerification: true`.
 *
 * Secret values are never logged and never appear in `requests`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readBody } from '../support/read-body.js';
import { testServerTls } from './test-tls.js';

export interface KeyVaultEmulatorOptions {
  port?: number;
  /** Which bearer tokens are valid (e.g. tokens the identity emulator issued for resource https://vault.azure.net). Default: any non-empty. */
  acceptToken?: (token: string) => boolean;
  /** Emulate the 'Key Vault Secrets User' role: reads allowed, writes answer 403 ForbiddenByRbac. */
  readOnly?: boolean;
  /** Used in the WWW-Authenticate challenge. Default 00000000-0000-0000-0000-000000000000. */
  tenantId?: string;
}

export interface SecretVersion {
  value: string;
  version: string;
  createdAt: Date;
}

export interface KeyVaultEmulator {
  /** https://127.0.0.1:<port> (no trailing slash). */
  readonly vaultUrl: string;
  /** Test setup: store a new version; `createdAt` lets a test plant an old secret. Returns the version id. */
  setSecret(name: string, value: string, createdAt?: Date): string;
  latest(name: string): SecretVersion | undefined;
  versions(name: string): ReadonlyArray<SecretVersion>;
  /** How many versions `name` has: Key Vault keeps every one (they cannot be deleted, only the whole secret). */
  versionCount(name: string): number;
  /** Every request, in order, including the SDK's unauthenticated challenge probes. No bodies or values. */
  readonly requests: ReadonlyArray<{ method: string; path: string; authorized: boolean }>;
  /** Answer the next `count` authorized requests with `status` (default 503) and `Retry-After: 1`. */
  failNext(count: number, status?: number): void;
  setReadOnly(readOnly: boolean): void;
  close(): Promise<void>;
}

interface StoredVersion {
  value: string;
  version: string;
  /** ms since epoch; the wire carries epoch seconds. */
  createdMs: number;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
}

const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const MAX_BODY_BYTES = 256 * 1024;
/** Key Vault's limit on a secret value. */
const MAX_VALUE_BYTES = 25 * 1024;
const DEFAULT_TENANT = '00000000-0000-0000-0000-000000000000';

function failureCode(status: number): string {
  if (status === 503) return 'ServiceUnavailable';
  if (status === 429) return 'Throttled';
  return 'InternalServerError';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringMap(value: unknown): value is Record<string, string> {
  return isPlainObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

export async function startKeyVaultEmulator(options: KeyVaultEmulatorOptions = {}): Promise<KeyVaultEmulator> {
  const acceptToken = options.acceptToken ?? ((token: string) => token !== '');
  const challenge = `Bearer authorization="https://login.microsoftonline.com/${options.tenantId ?? DEFAULT_TENANT}", resource="https://vault.azure.net"`;
  let readOnly = options.readOnly ?? false;
  let failures = { count: 0, status: 503 };
  const secrets = new Map<string, StoredVersion[]>();
  const requests: { method: string; path: string; authorized: boolean }[] = [];
  let vaultUrl = '';

  const store = (name: string, entry: Omit<StoredVersion, 'version'>): StoredVersion => {
    const stored = { ...entry, version: randomBytes(16).toString('hex') };
    const list = secrets.get(name) ?? [];
    list.push(stored);
    secrets.set(name, list);
    return stored;
  };

  const attributesOf = (v: StoredVersion) => ({
    enabled: v.enabled,
    created: Math.floor(v.createdMs / 1000),
    updated: Math.floor(v.createdMs / 1000),
    recoveryLevel: 'Recoverable+Purgeable',
    recoverableDays: 90,
  });
  /** An item of a list response: no value. */
  const itemOf = (id: string, v: StoredVersion) => ({
    id,
    attributes: attributesOf(v),
    ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
    ...(v.tags === undefined ? {} : { tags: v.tags }),
  });
  const bundleOf = (name: string, v: StoredVersion) => ({
    value: v.value,
    ...itemOf(`${vaultUrl}/secrets/${name}/${v.version}`, v),
  });

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res
      .writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-cache',
        'x-ms-request-id': randomUUID(),
        'x-ms-keyvault-service-version': '1.9.0.0',
        ...headers,
      })
      .end(JSON.stringify(body));
  };
  const fail = (res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>) =>
    send(res, status, { error: { code, message } }, headers);
  const notFound = (res: ServerResponse, what: string) =>
    fail(
      res,
      404,
      'SecretNotFound',
      `A secret with (name/id) ${what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
    );

  /** Routes an authorized request with a valid api-version. */
  const route = async (req: IncomingMessage, res: ServerResponse, segments: string[]) => {
    const [collection, name, sub, ...rest] = segments;
    if (collection !== 'secrets' || rest.length > 0)
      return fail(res, 404, 'NotFound', 'The requested resource was not found.');
    if (name === undefined) {
      if (req.method !== 'GET') return fail(res, 405, 'MethodNotAllowed', `${req.method ?? ''} is not supported here.`);
      const value = [...secrets].flatMap(([n, list]) => {
        const latest = list.at(-1);
        return latest ? [itemOf(`${vaultUrl}/secrets/${n}`, latest)] : [];
      });
      return send(res, 200, { value, nextLink: null });
    }
    if (!NAME.test(name)) {
      return fail(res, 400, 'BadParameter', `The request URI contains an invalid name: ${name.slice(0, 200)}`);
    }
    const list = secrets.get(name) ?? [];

    if (req.method === 'PUT' && sub === undefined) {
      if (readOnly) {
        const body = {
          error: {
            code: 'Forbidden',
            message: `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nAction: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'\r\nResource: 'secrets/${name}'\r\nAssignment: (not found)\r\n`,
            innererror: { code: 'ForbiddenByRbac' },
          },
        };
        return send(res, 403, body);
      }
      const text = await readBody(req, MAX_BODY_BYTES).then((b) => b?.toString('utf8'));
      if (text === undefined) return fail(res, 413, 'RequestTooLarge', 'The request body is too large.');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return fail(res, 400, 'BadParameter', 'The request body is not valid JSON.');
      }
      if (!isPlainObject(parsed) || typeof parsed.value !== 'string') {
        return fail(res, 400, 'BadParameter', "Property 'value' is required and must be a string.");
      }
      if (Buffer.byteLength(parsed.value, 'utf8') > MAX_VALUE_BYTES) {
        return fail(res, 400, 'BadParameter', 'The secret value is too large. The maximum size is 25 KB.');
      }
      const { contentType, tags, attributes } = parsed;
      if (contentType !== undefined && contentType !== null && typeof contentType !== 'string') {
        return fail(res, 400, 'BadParameter', "Property 'contentType' must be a string.");
      }
      if (tags !== undefined && tags !== null && !isStringMap(tags)) {
        return fail(res, 400, 'BadParameter', "Property 'tags' must map names to strings.");
      }
      const enabled = isPlainObject(attributes) && typeof attributes.enabled === 'boolean' ? attributes.enabled : true;
      const stored = store(name, {
        value: parsed.value,
        createdMs: Date.now(),
        enabled,
        ...(typeof contentType === 'string' ? { contentType } : {}),
        ...(isStringMap(tags) ? { tags } : {}),
      });
      return send(res, 200, bundleOf(name, stored));
    }
    if (req.method !== 'GET') return fail(res, 405, 'MethodNotAllowed', `${req.method ?? ''} is not supported here.`);

    if (sub === 'versions') {
      const value = list.map((v) => itemOf(`${vaultUrl}/secrets/${name}/${v.version}`, v));
      return send(res, 200, { value, nextLink: null });
    }
    const found = sub === undefined || sub === '' ? list.at(-1) : list.find((v) => v.version === sub);
    if (!found) return notFound(res, sub ? `${name}/${sub.slice(0, 64)}` : name);
    if (!found.enabled) {
      return send(res, 403, {
        error: {
          code: 'Forbidden',
          message: 'Operation get is not allowed on a disabled secret.',
          innererror: { code: 'SecretDisabled' },
        },
      });
    }
    return send(res, 200, bundleOf(name, found));
  };

  const server = createServer(testServerTls(), (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const header = req.headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    const authorized = bearer !== undefined && acceptToken(bearer);
    requests.push({ method: req.method ?? '', path: url.pathname, authorized });

    if (!authorized) {
      const message =
        bearer === undefined
          ? 'AKV10000: Request is missing a Bearer or PoP token.'
          : 'AKV10032: The access token was not accepted by this vault.';
      req.resume();
      return fail(res, 401, 'Unauthorized', message, { 'www-authenticate': challenge });
    }
    if (failures.count > 0) {
      failures.count--;
      req.resume();
      const message = 'The service is temporarily unavailable (injected failure).';
      return fail(res, failures.status, failureCode(failures.status), message, { 'retry-after': '1' });
    }
    if (!url.searchParams.get('api-version')) {
      req.resume();
      return fail(res, 400, 'BadParameter', "The 'api-version' query parameter is missing.");
    }
    let segments: string[];
    try {
      segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    } catch {
      req.resume();
      return fail(res, 400, 'BadParameter', 'The request URI is malformed.');
    }
    route(req, res, segments).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  vaultUrl = `https://127.0.0.1:${port}`;

  return {
    vaultUrl,
    setSecret(name, value, createdAt = new Date()) {
      if (!NAME.test(name)) throw new Error(`setSecret: invalid secret name ${JSON.stringify(name)}`);
      return store(name, { value, createdMs: createdAt.getTime(), enabled: true }).version;
    },
    latest(name) {
      const v = secrets.get(name)?.at(-1);
      return v && { value: v.value, version: v.version, createdAt: new Date(v.createdMs) };
    },
    versions: (name) =>
      (secrets.get(name) ?? []).map((v) => ({
        value: v.value,
        version: v.version,
        createdAt: new Date(v.createdMs),
      })),
    versionCount: (name) => secrets.get(name)?.length ?? 0,
    requests,
    failNext(count, status = 503) {
      failures = { count, status };
    },
    setReadOnly(value) {
      readOnly = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
