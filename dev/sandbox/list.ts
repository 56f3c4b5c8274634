/**
 * GET /v1.0/engagements/referrals: `$top`, `$skip` and a simple `$filter`
 * (docs/partner-center-api.md#listing-referrals). Only `field eq 'value'` clauses joined by `and` are
 * understood, for the documented scalar fields; any other clause is ignored.
 */
import { invalidRequest } from './errors.js';
import { jsonReply, type Reply } from './reply.js';
import { COLLECTION_CONTEXT, listItem } from './representation.js';
import { BASE_PATH } from './routes.js';
import type { ReferralStore } from './store.js';

/** At most 100 items per page, then `@odata.nextLink` (docs/partner-center-api.md#listing-referrals). */
const MAX_PAGE_SIZE = 100;

const FILTERABLE = new Set(['status', 'substatus', 'engagementId', 'type', 'qualification', 'direction']);

type Clause = { field: string; value: string };

function parseFilter(filter: string | null): Clause[] {
  if (filter === null) return [];
  const clauses: Clause[] = [];
  for (const part of filter
    .trim()
    .replace(/^\((.*)\)$/s, '$1')
    .split(/\s+and\s+/i)) {
    const match = /^\(?\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*\)?$/.exec(part.trim());
    const field = match?.[1];
    const value = match?.[2];
    if (field !== undefined && value !== undefined && FILTERABLE.has(field)) {
      clauses.push({ field, value: value.replaceAll("''", "'") });
    }
  }
  return clauses;
}

function parseCount(name: string, raw: string | null): number | undefined | Error {
  if (raw === null) return undefined;
  return /^\d+$/.test(raw) ? Number(raw) : new Error(`${name} must be a non-negative integer; got '${raw}'.`);
}

export function listReferrals(store: ReferralStore, query: URLSearchParams, origin: string): Reply {
  const top = parseCount('$top', query.get('$top'));
  const skip = parseCount('$skip', query.get('$skip'));
  if (top instanceof Error) return invalidRequest(top.message);
  if (skip instanceof Error) return invalidRequest(skip.message);

  const clauses = parseFilter(query.get('$filter'));
  const matching = store.list().filter((entry) => clauses.every(({ field, value }) => entry.doc[field] === value));
  const start = skip ?? 0;
  const end = Math.min(matching.length, start + (top ?? Number.POSITIVE_INFINITY));
  const page = matching.slice(start, Math.min(end, start + MAX_PAGE_SIZE));

  const body: Record<string, unknown> = {
    '@odata.context': COLLECTION_CONTEXT,
    '@odata.count': matching.length,
    value: page.map(listItem),
  };
  const next = start + page.length;
  if (next < end) {
    const params = new URLSearchParams(query);
    params.set('$skip', String(next));
    if (top !== undefined) params.set('$top', String(top - page.length));
    body['@odata.nextLink'] = `${origin}${BASE_PATH}?${params.toString()}`;
  }
  return jsonReply(200, body);
}
