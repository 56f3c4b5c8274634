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

/** A parsed JSON body, and the source text of the numbers of its top-level object. */
export interface ParsedBody {
  value: unknown;
  /** The number's text as sent (`9007199254740993`, `1e-400`), to refuse one the parsed value does not hold exactly. */
  numberSource(key: string): string | undefined;
}

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

/**
 * The parsed JSON body; 400 `invalid_event` for text that is not JSON. The numbers' source text comes
 * from JSON.parse's reviver context (source text access, Node 22): the value alone cannot tell
 * `9007199254740993` from `9007199254740992`.
 */
export function parseJsonBody(text: string): ParsedBody {
  const sources = new WeakMap<object, Map<string, string>>();
  const reviver: Reviver = function (key, value, context) {
    if (typeof value === 'number' && typeof this === 'object' && this !== null && context?.source !== undefined) {
      const holder = sources.get(this) ?? new Map<string, string>();
      sources.set(this, holder);
      holder.set(key, context.source);
    }
    return value;
  };
  let value: unknown;
  try {
    value = JSON.parse(text, reviver as Parameters<typeof JSON.parse>[1]);
  } catch (error) {
    if (error instanceof SyntaxError) throw invalidJson();
    // The reviver's walk is recursive: JSON nested thousands deep overflows it. Such a body is no flat
    // event anyway; parse it without the reviver and let the contract say what is wrong with it.
    try {
      value = JSON.parse(text);
    } catch {
      throw invalidJson();
    }
  }
  return {
    value,
    numberSource: (key) => (typeof value === 'object' && value !== null ? sources.get(value)?.get(key) : undefined),
  };
}

function invalidJson(): AdapterError {
  return new AdapterError('invalid_event', 'The body is not valid JSON.', {
    extensions: {
      errors: [{ pointer: '', field: 'body', code: 'invalid_json', message: 'The body is not valid JSON.' }],
    },
  });
}

/** `MS-CorrelationId` from the caller when it is a GUID, else a new one: one per event, sent upstream and back. */
export function correlationIdFrom(headers: { get(name: string): string | null }): string {
  const given = headers.get(CORRELATION_HEADER)?.trim();
  return given && GUID.test(given) ? given : randomUUID();
}
