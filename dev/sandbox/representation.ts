/** How a stored referral is shown on the wire (docs/partner-center-api.md#wire-format, #listing-referrals). */
import { deepClone } from './json.js';
import type { StoreEntry } from './store.js';

/** Verbatim from the docs, typo ("engagments") included (docs/partner-center-api.md#documentation-quirks). */
export const ENTITY_CONTEXT = 'https://api.partner.microsoft.com/v1.0/engagments/referrals/$metadata#Referrals/$entity';
export const COLLECTION_CONTEXT = 'https://api.partner.microsoft.com/v1.0/$metadata#Referrals';

/**
 * `links` as the service shows them. They point at the sandbox (nothing may
 * leave loopback) but keep the docs' "engagments" typo, so an app that builds
 * requests from `links` instead of the base URL gets a 404 (docs/partner-center-api.md#documentation-quirks).
 */
function links(origin: string, doc: Record<string, unknown>): Record<string, unknown> {
  const id = String(doc.id);
  const engagementId = String(doc.engagementId ?? '');
  const base = `${origin}/v1.0/engagments/referrals`;
  return {
    relatedReferrals: { uri: `${base}?$filter=engagementId eq '${engagementId}'`, method: 'GET', headers: [] },
    self: { uri: `${base}/${id}`, method: 'GET', headers: [] },
  };
}

/** A single referral as GET/PUT/PATCH return it: stored body + eTag + links (+ @odata.context on GET). */
export function referralResource(entry: StoreEntry, origin: string, withContext: boolean): Record<string, unknown> {
  return {
    ...(withContext ? { '@odata.context': ENTITY_CONTEXT } : {}),
    ...deepClone(entry.doc),
    eTag: entry.eTag,
    links: links(origin, entry.doc),
  };
}

/** A list item: the stored body only. List items carry no eTag (docs/partner-center-api.md#listing-referrals). */
export function listItem(entry: StoreEntry): Record<string, unknown> {
  return deepClone(entry.doc);
}
