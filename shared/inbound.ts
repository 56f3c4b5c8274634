/**
 * Reading an inbound HTTP request: size, media type, raw body, JSON, correlation id. Works on the
 * Functions `HttpRequest` and anything else with the same two members.
 */
import { randomUUID } from 'node:crypto';
import { AdapterError } from './errors.js';

export interface InboundRequest {
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function tooLarge(maxBytes: number): AdapterError {
  return new AdapterError('payload_too_large', `The body must be at most ${maxBytes} bytes.`);
}

/** The raw body text: 415 for a media type other than JSON, 413 above `maxBytes`. */
export async function readBodyText(request: InboundRequest, maxBytes: number): Promise<string> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!JSON_MEDIA_TYPE.test(contentType.trim())) {
    throw new AdapterError(
      'unsupported_media_type',
      `Send the event as JSON with Content-Type: application/json (got ${contentType ? `"${contentType.slice(0, 100)}"` : 'no Content-Type'}).`,
    );
  }
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const text = await request.text();
  if (Buffer.byteLength(text, 'utf8') > maxBytes) throw tooLarge(maxBytes);
  return text;
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
  const given = headers.get('ms-correlationid')?.trim();
  return given && GUID.test(given) ? given : randomUUID();
}
