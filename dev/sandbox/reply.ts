/**
 * Responses are built as plain values first and written later, so a fault
 * rule can decide to drop or replace a reply after the request was applied.
 */

export interface Reply {
  status: number;
  headers: Record<string, string>;
  /** Undefined for an empty body (204). */
  body?: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';

export function jsonReply(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': JSON_TYPE, ...headers }, body: JSON.stringify(value) };
}

export function emptyReply(status: number, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-length': '0', ...headers } };
}

/** A body chosen by a test: strings go out verbatim (e.g. an HTML gateway page), anything else as JSON. */
export function customReply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  if (typeof body !== 'string') return jsonReply(status, body, headers);
  const type = body.trimStart().startsWith('<') ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8';
  return { status, headers: { 'content-type': type, ...headers }, body };
}
