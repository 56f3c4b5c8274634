/**
 * Reading an inbound HTTP request: media type, JSON body, correlation id. Works on the Functions
 * `HttpRequest` and anything else with the same two members.
 */
import { randomUUID } from 'node:crypto';
import { AdapterError } from './errors.js';

export interface InboundRequest {
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The parsed JSON body. 415 for another media type, 400 `invalid_event` for a body that is not JSON. */
export async function readJsonBody(request: InboundRequest): Promise<unknown> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!JSON_MEDIA_TYPE.test(contentType.trim())) {
    throw new AdapterError(
      'unsupported_media_type',
      `Send the event as JSON with Content-Type: application/json (got ${contentType ? `"${contentType.slice(0, 100)}"` : 'no Content-Type'}).`,
    );
  }
  const text = await request.text();
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
