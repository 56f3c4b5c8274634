/**
 * Partner Center Referrals API emulator ("the sandbox"): an in-memory HTTP
 * server on loopback plus a programmatic control API for tests (state,
 * observation of requests, fault injection).
 */
import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { invalidRequest, statusFaultReply } from './errors.js';
import { type FaultAction, type FaultRule, FaultRules } from './faults.js';
import { type ApiContext, handleApiRequest } from './handlers.js';
import { deepClone } from './json.js';
import { type AppliedWrite, type FaultLogEntry, Ledger, type SandboxStats } from './ledger.js';
import { applyExternalEdit, type RandomFault, RandomFaultSource, type RandomFaults } from './random-faults.js';
import { type RateLimit, TokenBucket } from './rate-limit.js';
import { customReply, type Reply } from './reply.js';
import { referralIdOf } from './routes.js';
import { seedReferrals } from './seed.js';
import { ReferralStore } from './store.js';

export type { FaultAction, FaultRule } from './faults.js';
export type { AppliedWrite, FaultLogEntry, FaultLogKind, SandboxStats } from './ledger.js';
export type { RandomFaultKind, RandomFaults } from './random-faults.js';
export { ADAPTER_WRITTEN_PATHS, EXTERNAL_EDIT_COUNTER, RANDOM_FAULT_KINDS } from './random-faults.js';
export type { RateLimit } from './rate-limit.js';

export interface SandboxOptions {
  /** Default 0: a random free port. */
  port?: number;
  /** Default 127.0.0.1. Only loopback addresses are accepted. */
  host?: string;
  /** Load the sample referrals from seed.ts. Default true. */
  seed?: boolean;
  /** Which bearer tokens are valid. Default: any non-empty token. */
  acceptToken?: (token: string) => boolean;
  /**
   * Whether an accepted token comes from a sign-in with multi-factor authentication (its `amr` lists `mfa`).
   * A token without it is refused with 401 and error code 900421, as Partner Center refuses App+User calls
   * without MFA (docs/partner-center-api.md#mfa-enforcement). Default: every token passes.
   */
  tokenHasMfa?: (token: string) => boolean;
  /**
   * Rate-limit mode: above `perSecond` requests per second (bursts up to `burst`), requests are answered `429`
   * with `Retry-After` in the throttling shape, before any fault rule, and counted in `stats().throttled`.
   * Default: no limit.
   */
  rateLimit?: RateLimit;
}

export interface RecordedRequest {
  method: string;
  /** Path including the query string, as received. */
  path: string;
  /** Lower-cased header names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** Set when the path addresses one referral. */
  referralId?: string;
}

export interface PartnerCenterSandbox {
  /** Origin, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Closes the server and destroys every open socket. */
  close(): Promise<void>;
  /** Deep copy of the stored resource including its current eTag, without links/@odata. */
  getReferral(id: string): Record<string, unknown> | undefined;
  /** Inserts or replaces a referral directly (test setup); assigns and returns a new eTag. */
  putReferral(referral: Record<string, unknown>): string;
  /** "Someone else" edits the referral: applies `edit`, bumps eTag and updatedDateTime, returns the new eTag. */
  editReferral(id: string, edit: (referral: Record<string, unknown>) => void): string;
  /**
   * Back to the seed (or empty when seed: false); clears recorded requests,
   * fault rules, the random fault mode, the fault log, applied writes and stats.
   */
  reset(): void;
  /** Every request received, in order, including those a fault answered. */
  readonly requests: ReadonlyArray<RecordedRequest>;
  clearRequests(): void;
  /** Adds a fault rule. Rules take precedence over random faults. */
  injectFault(rule: FaultRule): void;
  /**
   * Starts (or, with undefined, ends) the rate-limit mode with a full bucket. reset() keeps the mode and
   * refills the bucket. Throws a RangeError on an invalid limit.
   */
  setRateLimit(limit: RateLimit | undefined): void;
  /** Removes pending fault rules; the random fault mode stays (setRandomFaults(undefined) ends it). */
  clearFaults(): void;
  /**
   * Starts (or, with undefined, ends) the random fault mode. Each call starts
   * the PRNG afresh from `seed`; the fault log and stats are not cleared
   * (reset() does that). Throws a RangeError on an invalid config.
   */
  setRandomFaults(config: RandomFaults | undefined): void;
  /**
   * Every fault that fired since reset(), random or rule, in request order.
   * `applied` is final once the request has been handled.
   */
  readonly faultLog: ReadonlyArray<FaultLogEntry>;
  /** Counters since reset(): requests, PUTs, applied PUTs, 412s, faults per kind, external edits per referral. */
  stats(): SandboxStats;
  /**
   * The HTTP writes (PUT/PATCH) stored for a referral since reset(), in order,
   * with the eTag each replaced and the adapter-written fields as stored.
   * Control-API writes and concurrent edits are not included.
   */
  appliedWrites(referralId: string): ReadonlyArray<AppliedWrite>;
}

const MAX_BODY_BYTES = 5 * 1024 * 1024;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new Error('Request body too large');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

class Sandbox implements PartnerCenterSandbox {
  private origin = '';
  private readonly store = new ReferralStore();
  private readonly faults = new FaultRules();
  private readonly ledger = new Ledger();
  private random: RandomFaultSource | undefined;
  private rateLimit: RateLimit | undefined;
  private bucket: TokenBucket | undefined;
  private recorded: RecordedRequest[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly closing = new AbortController();
  private readonly server: Server;
  private readonly seed: boolean;
  private readonly acceptToken: (token: string) => boolean;
  private readonly tokenHasMfa: (token: string) => boolean;

  constructor(options: SandboxOptions) {
    this.seed = options.seed ?? true;
    this.acceptToken = options.acceptToken ?? ((token) => token.length > 0);
    this.tokenHasMfa = options.tokenHasMfa ?? (() => true);
    this.setRateLimit(options.rateLimit);
    this.reset();
    this.server = createServer((req, res) => {
      this.onRequest(req, res).catch(() => this.fail(res));
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(port: number, host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.origin = `http://${hostPart}:${address.port}`;
  }

  get url(): string {
    return this.origin;
  }

  async close(): Promise<void> {
    this.closing.abort();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  get requests(): ReadonlyArray<RecordedRequest> {
    return [...this.recorded];
  }

  getReferral(id: string): Record<string, unknown> | undefined {
    const entry = this.store.get(id);
    return entry === undefined ? undefined : { ...deepClone(entry.doc), eTag: entry.eTag };
  }

  putReferral(referral: Record<string, unknown>): string {
    return this.store.insert(referral);
  }

  editReferral(id: string, edit: (referral: Record<string, unknown>) => void): string {
    return this.store.edit(id, edit).eTag;
  }

  reset(): void {
    this.store.load(this.seed ? seedReferrals() : []);
    this.recorded = [];
    this.faults.clear();
    this.random = undefined;
    this.ledger.clear();
    this.setRateLimit(this.rateLimit);
  }

  setRateLimit(limit: RateLimit | undefined): void {
    this.bucket = limit === undefined ? undefined : new TokenBucket(limit);
    this.rateLimit = limit;
  }

  clearRequests(): void {
    this.recorded = [];
  }

  injectFault(rule: FaultRule): void {
    this.faults.add(rule);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  setRandomFaults(config: RandomFaults | undefined): void {
    this.random = config === undefined ? undefined : new RandomFaultSource(config);
  }

  get faultLog(): ReadonlyArray<FaultLogEntry> {
    return this.ledger.faultLog;
  }

  stats(): SandboxStats {
    return this.ledger.stats();
  }

  appliedWrites(referralId: string): ReadonlyArray<AppliedWrite> {
    return this.ledger.appliedWrites(referralId);
  }

  private get context(): ApiContext {
    return { store: this.store, origin: this.url, acceptToken: this.acceptToken, tokenHasMfa: this.tokenHasMfa };
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: string;
    try {
      body = await readBody(req);
    } catch {
      req.socket.destroy();
      return;
    }
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const headers = flattenHeaders(req.headers);
    let url: URL;
    try {
      url = new URL(path, this.url);
    } catch {
      this.send(res, headers, invalidRequest('Malformed request URL.'));
      return;
    }
    const referralId = referralIdOf(url.pathname);
    this.recorded.push(
      Object.freeze({
        method,
        path,
        headers: Object.freeze(headers),
        body,
        ...(referralId === undefined ? {} : { referralId }),
      }),
    );

    const seq = this.ledger.received(method);
    const retryAfter = this.bucket?.take();
    if (retryAfter !== undefined) {
      this.ledger.throttled(seq);
      this.send(res, headers, statusFaultReply(429, String(retryAfter)));
      return;
    }
    const action = this.chooseFault(seq, method, referralId);
    if (action !== undefined && !(await this.beforeHandling(action, referralId, req, res, headers))) {
      this.ledger.abandoned(seq);
      return;
    }

    const target = (method === 'PUT' || method === 'PATCH') && referralId !== undefined ? referralId : undefined;
    const before = target === undefined ? undefined : this.store.get(target);
    const reply = handleApiRequest(this.context, { method, url, headers, body });
    const after = target === undefined ? undefined : this.store.get(target);
    const stored = before !== undefined && after !== undefined && after.eTag !== before.eTag;
    this.ledger.handled({
      seq,
      method,
      status: reply.status,
      ...(stored
        ? { write: { id: String(after.doc.id), replacedETag: before.eTag, eTag: after.eTag, doc: after.doc } }
        : {}),
    });
    if (action?.type === 'apply-then-reset') {
      req.socket.destroy();
      return;
    }
    this.send(res, headers, action?.type === 'apply-then-status' ? statusFaultReply(action.status) : reply);
  }

  /**
   * The fault for this request: an injected rule first; otherwise the random
   * mode's draw (drawn for every request while the mode is on, so a rule
   * firing does not shift the random sequence). Logs the fault that fires.
   */
  private chooseFault(seq: number, method: string, referralId: string | undefined): FaultAction | undefined {
    const rule = this.faults.take(method, referralId);
    const referralStored = referralId !== undefined && this.store.get(referralId) !== undefined;
    const drawn = this.random?.next({ method, referralStored });
    const where = referralId === undefined ? {} : { referralId };
    if (rule !== undefined) {
      this.ledger.faultFired({ seq, method, ...where, kind: 'rule', detail: describeRule(rule) });
      return rule;
    }
    if (drawn === undefined) return undefined;
    const detail = describeDrawn(drawn);
    this.ledger.faultFired({ seq, method, ...where, kind: drawn.kind, ...(detail === undefined ? {} : { detail }) });
    return this.randomAction(drawn);
  }

  private randomAction(fault: RandomFault): FaultAction {
    switch (fault.kind) {
      case 'throttle':
        return { type: 'status', status: 429, retryAfter: fault.retryAfter };
      case 'server-error':
        return { type: 'status', status: fault.status };
      case 'reset':
        return { type: 'reset' };
      case 'lost-response':
        return { type: 'apply-then-reset' };
      case 'latency':
        return { type: 'delay', ms: fault.ms };
      case 'concurrent-edit':
        return {
          type: 'concurrent-edit',
          edit: (referral) => {
            applyExternalEdit(referral);
            this.ledger.externalEdit(String(referral.id));
          },
        };
    }
  }

  /** Runs the part of a fault that comes before normal handling; false when the fault already ended the exchange. */
  private async beforeHandling(
    action: FaultAction,
    referralId: string | undefined,
    req: IncomingMessage,
    res: ServerResponse,
    headers: Record<string, string>,
  ): Promise<boolean> {
    switch (action.type) {
      case 'status': {
        const retryAfter: Record<string, string> =
          action.retryAfter === undefined ? {} : { 'retry-after': action.retryAfter };
        const reply =
          action.body === undefined
            ? statusFaultReply(action.status, action.retryAfter)
            : customReply(action.status, action.body, retryAfter);
        this.send(res, headers, reply);
        return false;
      }
      case 'reset':
        req.socket.destroy();
        return false;
      case 'delay':
        try {
          await sleep(action.ms, undefined, { signal: this.closing.signal });
          return true;
        } catch {
          req.socket.destroy(); // the sandbox is closing
          return false;
        }
      case 'concurrent-edit':
        if (referralId !== undefined && this.store.get(referralId) !== undefined) {
          this.store.edit(referralId, action.edit);
        }
        return true;
      default:
        return true;
    }
  }

  private send(res: ServerResponse, requestHeaders: Record<string, string>, reply: Reply): void {
    if (res.destroyed || res.headersSent) return;
    const headers: Record<string, string> = { 'request-id': randomUUID(), ...reply.headers };
    const clientRequestId = requestHeaders['client-request-id'];
    if (clientRequestId !== undefined) headers['client-request-id'] = clientRequestId;
    res.writeHead(reply.status, headers);
    res.end(reply.body);
  }

  private fail(res: ServerResponse): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.send(res, {}, statusFaultReply(500));
  }
}

function describeRule(action: FaultAction): string {
  switch (action.type) {
    case 'status':
    case 'apply-then-status':
      return `${action.type} ${action.status}`;
    case 'delay':
      return `delay ${action.ms} ms`;
    default:
      return action.type;
  }
}

function describeDrawn(fault: RandomFault): string | undefined {
  switch (fault.kind) {
    case 'throttle':
      return `429 retry-after ${fault.retryAfter}`;
    case 'server-error':
      return String(fault.status);
    case 'latency':
      return `${fault.ms} ms`;
    default:
      return undefined;
  }
}

/** Starts the sandbox on loopback (a random port unless `port` is given). */
export async function startPartnerCenterSandbox(options: SandboxOptions = {}): Promise<PartnerCenterSandbox> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new Error(`The sandbox only listens on loopback; refusing host ${host}`);
  const sandbox = new Sandbox(options);
  await sandbox.listen(options.port ?? 0, host);
  return sandbox;
}
