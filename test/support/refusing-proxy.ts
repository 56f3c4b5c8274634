/**
 * A loopback forward proxy that refuses everything, for SDK calls to fixed cloud hosts that no setting
 * turns off. The Azure Monitor exporter polls its remote configuration service
 * (`settings.sdk.monitor.azure.com`, "OneSettings") 5 to 15 s after it starts; its HTTP pipeline honours
 * `HTTPS_PROXY`, so with this proxy in `HTTPS_PROXY` (and loopback in `NO_PROXY`) such a call becomes a
 * refused `CONNECT` on 127.0.0.1: no DNS lookup, nothing leaves the machine.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RefusingProxy {
  /** `HTTPS_PROXY` / `NO_PROXY` for a child process. */
  readonly env: Record<string, string>;
  /** The `host:port` of every refused request, in order. */
  readonly refused: ReadonlyArray<string>;
  close(): Promise<void>;
}

export async function startRefusingProxy(): Promise<RefusingProxy> {
  const refused: string[] = [];
  const server = createServer((req, res) => {
    refused.push(req.headers.host ?? req.url ?? '');
    res.writeHead(403).end();
  });
  server.on('connect', (req, socket) => {
    refused.push(req.url ?? '');
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    env: { HTTPS_PROXY: url, HTTP_PROXY: url, NO_PROXY: '127.0.0.1,localhost,::1' },
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
