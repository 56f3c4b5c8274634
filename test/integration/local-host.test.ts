/**
 * The local host (dev/host/host.ts) at the edges of HTTP, as `npm start` serves the app: bodies past the
 * platform's 100 MB are refused while they stream in (never read to the end), a `Host` that is not a host is a
 * `400`, routes match without regard to case, and a caller that hangs up is one log line, not a stack trace.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST_MAX_REQUEST_BYTES } from '../../dev/host/host.js';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { type HostProcess, startHostProcess } from '../support/stack.js';

/** Writes raw bytes on a new connection and resolves with everything the host answered until it closed. */
function raw(hostUrl: string, text: string, { hangUp = false } = {}): Promise<string> {
  const { hostname, port } = new URL(hostUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(text);
      if (hangUp) socket.destroy();
    });
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

/**
 * POSTs a chunked body of `totalBytes` (no Content-Length), written only as fast as the host reads it. Resolves
 * with how many bytes the host took before it answered or closed, and its status when it answered.
 */
function streamBody(hostUrl: string, totalBytes: number): Promise<{ written: number; status: number | undefined }> {
  const chunk = Buffer.alloc(1024 * 1024, 0x20);
  return new Promise((resolve) => {
    let written = 0;
    let status: number | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve({ written, status });
    };
    const req = request(`${hostUrl}/api/referral-updates`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
      status = res.statusCode;
      res.resume();
      res.on('end', finish);
      res.on('error', finish);
    });
    req.on('error', finish);
    req.on('close', () => setImmediate(finish));
    const pump = () => {
      while (!done && written < totalBytes && !req.destroyed) {
        written += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (written >= totalBytes && !req.destroyed) req.end();
    };
    req.flushHeaders();
    pump();
  });
}

describe('the local host', () => {
  let app: HostProcess;
  beforeAll(async () => {
    app = await startHostProcess({ IDEMPOTENCY_STORE: 'memory' });
  });
  afterAll(async () => {
    await app?.host.stop();
  });

  it('refuses a chunked body past 100 MB with 413 while it streams in, without reading the rest', async () => {
    const total = HOST_MAX_REQUEST_BYTES + 64 * 1024 * 1024;
    const { written, status } = await streamBody(app.hostUrl, total);
    // The host stopped reading: the client could not hand over the whole body (the sockets' buffers hold a few MB).
    expect(written).toBeLessThan(total - 32 * 1024 * 1024);
    if (status !== undefined) expect(status).toBe(413);
    expect(app.host.output()).toContain(`request body larger than ${HOST_MAX_REQUEST_BYTES} bytes: 413`);
    // And the host still serves.
    expect((await app.health()).status).toBe(200);
  });

  it('answers 413 to a Content-Length above 100 MB before reading any of the body', async () => {
    const answer = await raw(
      app.hostUrl,
      `POST /api/referral-updates HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${HOST_MAX_REQUEST_BYTES + 1}\r\n\r\n{`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
  });

  it.each(['a b', '[', '%zz', 'x/y'])('answers 400 to the Host header %j (not an empty 500)', async (host) => {
    const answer = await raw(app.hostUrl, `GET /api/health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('matches routes and their prefix without regard to case, like the Functions host', async () => {
    expect((await fetch(`${app.hostUrl}/API/Health`)).status).toBe(200);
    const answer = await fetch(`${app.hostUrl}/Api/Referral-Updates`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ referralId: SEED_IDS.activeAccepted, notes: 'case', dryRun: true }),
    });
    expect(answer.status).toBe(200);
    expect((await fetch(`${app.hostUrl}/ADMIN/functions`)).status).toBe(200);
  });

  it('logs one line without a stack when a client disconnects in the middle of its body', async () => {
    await raw(
      app.hostUrl,
      'POST /api/referral-updates HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"referralId":',
      { hangUp: true },
    );
    const [line] = await app.host.waitFor(/.*the client disconnected before the answer.*\n/);
    expect(line).toContain('POST /api/referral-updates');
    expect(app.host.output()).not.toMatch(/^\s+at /m);
  });
});
