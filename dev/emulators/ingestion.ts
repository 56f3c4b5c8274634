/**
 * A loopback Application Insights ingestion endpoint (the Breeze `track` API), for tests and benchmarks:
 * the Azure Monitor exporter POSTs batches of envelopes to `{IngestionEndpoint}/v2.1/track`, gzip-compressed
 * JSON, and expects `{ itemsReceived, itemsAccepted, errors }` back.
 *
 * HTTPS with dev/emulators/tls/localhost.pem: the exporter forces https on the ingestion endpoint. Clients trust
 * dev/emulators/tls/test-ca.pem through NODE_EXTRA_CA_CERTS (dev/emulators/tls/README.md).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { readBody } from '../support/read-body.js';
import { testServerTls } from './test-tls.js';

/** One telemetry item as it arrives: `data.baseType` says what it is (RequestData, RemoteDependencyData, …). */
export interface Envelope {
  name: string;
  iKey?: string;
  time: string;
  tags?: Record<string, string>;
  data: { baseType: string; baseData: Record<string, unknown> & { properties?: Record<string, string> } };
}

/**
 * What keeps the SDK itself on loopback besides the connection string: statsbeat (its usage reports to
 * Microsoft) off entirely (the first variable turns off only its optional part), and `WEBSITE_SITE_NAME`
 * set, which stops the virtual-machine metadata probe.
 */
export const LOOPBACK_TELEMETRY_SETTINGS: Readonly<Record<string, string>> = {
  APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
  APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
  WEBSITE_SITE_NAME: 'referral-webhook-local',
};

export interface IngestionRequest {
  path: string;
  /** The `Authorization` header, when the exporter authenticates with Entra ID. */
  authorization: string | undefined;
  items: number;
}

export interface IngestionEmulator {
  /** https://127.0.0.1:<port>/ */
  readonly url: string;
  /** A connection string pointing every endpoint of the SDK at this emulator. */
  readonly connectionString: string;
  readonly instrumentationKey: string;
  readonly envelopes: ReadonlyArray<Envelope>;
  readonly requests: ReadonlyArray<IngestionRequest>;
  /** Items of one base type (`RequestData`, `RemoteDependencyData`, `EventData`, `MetricData`, `MessageData`). */
  ofType(baseType: string): Envelope[];
  /** Resolves once `predicate` holds for the items received so far. */
  waitFor(predicate: (envelopes: ReadonlyArray<Envelope>) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startIngestionEmulator(options: { port?: number } = {}): Promise<IngestionEmulator> {
  const envelopes: Envelope[] = [];
  const requests: IngestionRequest[] = [];
  const listeners = new Set<() => void>();
  const instrumentationKey = randomUUID();

  const server = createServer(testServerTls(), (req, res) => {
    void (async () => {
      const raw = (await readBody(req)) ?? Buffer.alloc(0);
      const url = new URL(req.url ?? '/', 'https://127.0.0.1');
      if (req.method !== 'POST' || !/\/v2(\.1)?\/track$/.test(url.pathname)) {
        res.writeHead(404).end();
        return;
      }
      const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
      const trimmed = text.trim();
      const items = (
        trimmed.startsWith('[')
          ? (JSON.parse(trimmed) as Envelope[])
          : trimmed
              .split('\n')
              .filter(Boolean)
              .map((line) => JSON.parse(line) as Envelope)
      ).filter((item) => item.iKey === undefined || item.iKey === instrumentationKey);
      envelopes.push(...items);
      requests.push({ path: url.pathname, authorization: req.headers.authorization, items: items.length });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ itemsReceived: items.length, itemsAccepted: items.length, errors: [] }));
      for (const listener of listeners) listener();
    })().catch(() => {
      if (!res.headersSent) res.writeHead(400);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `https://127.0.0.1:${port}/`;

  return {
    url,
    instrumentationKey,
    connectionString: `InstrumentationKey=${instrumentationKey};IngestionEndpoint=${url};LiveEndpoint=${url}`,
    envelopes,
    requests,
    ofType: (baseType) => envelopes.filter((e) => e.data?.baseType === baseType),
    waitFor(predicate, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(envelopes)) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          const seen = envelopes.map((e) => `${e.data?.baseType}:${e.data?.baseData?.name ?? ''}`).join(', ');
          reject(new Error(`timed out waiting for telemetry; received: ${seen || 'nothing'}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
