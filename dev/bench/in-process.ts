/**
 * What the in-process bench modules (throughput.ts, memory.ts) share: the app's use case `processEvent` on a
 * runtime of their own (the real Partner Center client, a fixed token, telemetry off), fed requests as the
 * Functions host would pass them (docs/performance.md).
 */
import type { Pool } from 'undici';
import type { TokenProvider } from '../../shared/auth/token-provider.js';
import type { Config } from '../../shared/config.js';
import type { IdempotencyStore } from '../../shared/idempotency/store.js';
import { createPartnerCenterClient, type PartnerCenterClient } from '../../shared/partner-center/client.js';
import type { Telemetry } from '../../shared/telemetry/telemetry.js';
import {
  type EventApp,
  type EventRequest,
  type EventRuntime,
  processEvent,
} from '../../shared/use-cases/process-event.js';
import { ReferralQueues } from '../../shared/use-cases/referral-batch.js';

/** A fixed token: the sandbox accepts any, and the figures are about the calls to Partner Center. */
export const FIXED_TOKENS: TokenProvider = {
  getToken: async () => 'bench-token',
  invalidate: () => {},
  health: async () => ({
    mode: 'managed-identity',
    requests: 0,
    lastSuccessAt: null,
    lastFailureAt: null,
    lastFailure: null,
    warnings: [],
  }),
};

const NO_TELEMETRY: Telemetry = { inInvocation: (_traceParent, work) => work(), recordEvent: () => {} };
const QUIET = { log: () => {}, warn: () => {}, error: () => {} };

export interface InProcessApp {
  client: PartnerCenterClient;
  /** One POST /api/referral-updates through `processEvent`: its status. */
  post(body: Record<string, unknown>, headers?: Record<string, string>): Promise<number>;
  /** The same, throwing unless it answered 200. */
  postOk(body: Record<string, unknown>, headers?: Record<string, string>): Promise<void>;
}

export function inProcessApp(config: Config, idempotency: IdempotencyStore): InProcessApp {
  const client = createPartnerCenterClient(config.partnerCenter, config.retry, FIXED_TOKENS);
  const runtime: EventRuntime = { config, client, idempotency, referrals: new ReferralQueues() };
  const app: EventApp = { runtime: () => runtime, telemetry: () => NO_TELEMETRY };
  const post = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const bytes = Buffer.from(JSON.stringify(body));
    const request: EventRequest = {
      headers: new Headers({ 'content-type': 'application/json', ...headers }),
      query: new URLSearchParams(),
      url: 'http://localhost:7071/api/referral-updates',
      arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    };
    const response = await processEvent(request, QUIET, app);
    return response.status;
  };
  return {
    client,
    post,
    async postOk(body, headers) {
      const status = await post(body, headers);
      if (status !== 200) throw new Error(`an event answered ${status}`);
    },
  };
}

/**
 * The floor of one event: what any client must do to update a referral, GET then a conditional PUT with undici
 * and a fixed token, the deal value set to `n`.
 */
export async function bareUpdate(
  pool: Pool,
  headers: Record<string, string>,
  referralId: string,
  n: number,
): Promise<void> {
  const path = `/v1.0/engagements/referrals/${referralId}`;
  const read = await pool.request({ method: 'GET', path, headers });
  const referral = (await read.body.json()) as Record<string, unknown>;
  const { links: _links, '@odata.context': _context, ...body } = referral;
  (body.details as Record<string, unknown>).dealValue = n;
  const write = await pool.request({
    method: 'PUT',
    path,
    headers: { ...headers, 'if-match': String(referral.eTag) },
    body: JSON.stringify(body),
  });
  await write.body.text();
  if (write.statusCode !== 200) throw new Error(`bare PUT answered ${write.statusCode}`);
}
