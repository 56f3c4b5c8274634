/**
 * Reading an inbound HTTP request: size, media type, raw body, JSON, correlation id. Works on the
 * Functions `HttpRequest` and anything else with the same two members.
 */
import { randomUUID } from 'node:crypto';
import { CORRELATION_HEADER } from '../contract/headers.js';
import { AdapterError } from '../core/errors.js';

export interface InboundRequest {
  headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
}

const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function tooLarge(maxBytes: number): AdapterError {
  return new AdapterError('payload_too_large', `The body must be at most ${maxBytes} bytes.`);
}

/** The raw body bytes: 415 for a media type other than JSON (or a charset other than UTF-8), 413 above `maxBytes`. */
export async function readBodyBytes(request: InboundRequest, maxBytes: number): Promise<Buffer> {
  const contentType = request.headers.get('content-type') ?? '';
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1];
  if (!JSON_MEDIA_TYPE.test(contentType.trim()) || (charset !== undefined && !/^utf-?8$/i.test(charset))) {
    throw new AdapterError(
      'unsupported_media_type',
      `Send the event as UTF-8 JSON with Content-Type: application/json (got ${contentType ? `"${contentType.slice(0, 60)}"` : 'no Content-Type'}).`,
    );
  }
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > maxBytes) throw tooLarge(maxBytes);
  return bytes;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The body as text; 400 `invalid_event` for bytes that are not UTF-8 (never silently replaced). */
export function decodeUtf8(bytes: Buffer): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new AdapterError('invalid_event', 'The body is not valid UTF-8.', {
      extensions: {
        errors: [{ pointer: '', field: 'body', code: 'invalid_utf8', message: 'The body is not valid UTF-8.' }],
      },
    });
  }
}

/** The parsed JSON body; 400 `invalid_event` for text that is not JSON. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new AdapterError('invalid_event', 'The body is not valid JSON.', {
      extensions: {
        errors: [{ pointer: '', field: 'body', code: 'invalid_json', message: 'The body is not valid JSON.' }],
      },
    });
  }
}

/** `MS-CorrelationId` from the caller when it is a GUID, else a new one: one per event, sent upstream and back. */
export function correlationIdFrom(headers: { get(name: string): string | null }): string {
  const given = headers.get(CORRELATION_HEADER)?.trim();
  return given && GUID.test(given) ? given : randomUUID();
}
