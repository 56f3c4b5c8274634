/**
 * Standard Webhooks signatures (standard-webhooks spec v1): `webhook-id`, `webhook-timestamp` (Unix
 * seconds, within 5 minutes of now) and `webhook-signature` (space-separated `v1,<base64 HMAC-SHA256>`
 * entries over `id.timestamp.rawBody`, keyed with the base64-decoded part of a `whsec_` secret). Any
 * `v1` entry matching any configured secret passes, so secrets can be rotated without downtime. Only
 * canonical base64 counts as a signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { REQUEST_HEADERS } from '../contract/headers.js';
import { AdapterError } from '../core/errors.js';

export const SIGNATURE_TOLERANCE_SECONDS = 300;

export interface SignatureHeaders {
  get(name: string): string | null;
}

function invalid(detail: string): AdapterError {
  return new AdapterError('invalid_signature', detail, { logCode: 'WEBHOOK_SIGNATURE_INVALID' });
}

/**
 * The bytes of canonical base64 (RFC 4648 §4: standard alphabet, padded, zero pad bits), else undefined.
 * Node's decoder is lenient (it skips stray characters, takes the URL-safe alphabet, ignores pad bits):
 * without this check many spellings of one signature would pass.
 */
function canonicalBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** Throws `invalid_signature` unless the request is signed by one of `secrets` (`v1` entries in canonical base64). */
export function verifyWebhookSignature(
  secrets: readonly string[],
  headers: SignatureHeaders,
  rawBody: Buffer,
  nowSeconds = Math.floor(Date.now() / 1000),
): void {
  const id = headers.get(REQUEST_HEADERS.webhookId);
  const timestamp = headers.get(REQUEST_HEADERS.webhookTimestamp);
  const signature = headers.get(REQUEST_HEADERS.webhookSignature);
  if (!id || !timestamp || !signature) {
    throw invalid('Signed webhooks are required: send webhook-id, webhook-timestamp and webhook-signature.');
  }
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > SIGNATURE_TOLERANCE_SECONDS) {
    throw invalid('webhook-timestamp must be the current Unix time in seconds (within 5 minutes).');
  }
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), rawBody]);
  const candidates = signature
    .split(' ')
    .map((entry) => entry.split(','))
    .filter(([version, value]) => version === 'v1' && value)
    .map(([, value]) => canonicalBase64(value as string))
    .filter((candidate) => candidate !== undefined);
  for (const secret of secrets) {
    const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
      .update(signed)
      .digest();
    if (candidates.some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected))) {
      return;
    }
  }
  throw invalid('No webhook-signature entry matches: check the signing secret.');
}

/** Signs like a Standard Webhooks sender (for tests and callers' reference). */
export function signWebhook(secret: string, id: string, timestamp: number, rawBody: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${rawBody}`).digest('base64')}`;
}
