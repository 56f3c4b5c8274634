/**
 * In-memory referral store. Each entry keeps the document exactly as last
 * written (key order, 7-digit date strings, unknown fields) and its eTag
 * separately, so the eTag is never part of what a PUT body can overwrite.
 */
import { randomUUID } from 'node:crypto';
import { deepClone, isPlainObject, type StoredReferral } from './json.js';
import { utcNow7 } from './time.js';

export interface StoreEntry {
  readonly doc: Record<string, unknown>;
  readonly eTag: string;
}

/** Keys the store never keeps: the eTag is tracked separately, the rest is response decoration. */
const NOT_STORED = new Set(['eTag', 'links']);

/**
 * A new entity tag. The value carries literal double quotes, as the service's
 * do (`"\"2500ec5a-…\""`, docs/partner-center-api.md#etag-and-if-match), so an app that strips or re-adds
 * quotes fails the byte-for-byte If-Match comparison.
 */
export function newETag(): string {
  return `"${randomUUID()}"`;
}

/** Copy of `doc` without the eTag, links and OData control information (`@odata.*`). */
export function storable(doc: Record<string, unknown>): Record<string, unknown> {
  const kept = Object.entries(doc).filter(([key]) => !NOT_STORED.has(key) && !key.startsWith('@odata.'));
  return deepClone(Object.fromEntries(kept));
}

export class ReferralStore {
  // Keyed by lower-cased id: GUIDs are case-insensitive in URLs.
  private readonly entries = new Map<string, StoreEntry>();

  load(referrals: readonly StoredReferral[]): void {
    this.entries.clear();
    for (const referral of referrals) this.insert(referral);
  }

  get(id: string): StoreEntry | undefined {
    return this.entries.get(id.toLowerCase());
  }

  list(): StoreEntry[] {
    return [...this.entries.values()];
  }

  /** Inserts or replaces a referral as given (test setup); returns its new eTag. */
  insert(referral: Record<string, unknown>): string {
    const id = referral.id;
    if (typeof id !== 'string' || id === '') throw new Error('A referral needs a non-empty string id');
    const eTag = newETag();
    this.entries.set(id.toLowerCase(), { doc: storable(referral), eTag });
    return eTag;
  }

  /**
   * A successful write: stores `doc` as sent (full replace), stamps
   * `updatedDateTime` and assigns a new eTag.
   */
  write(id: string, doc: Record<string, unknown>): StoreEntry {
    const key = id.toLowerCase();
    if (!this.entries.has(key)) throw new Error(`Unknown referral ${id}`);
    const stored = storable(doc);
    stored.updatedDateTime = utcNow7();
    const entry = { doc: stored, eTag: newETag() };
    this.entries.set(key, entry);
    return entry;
  }

  /** Another writer edits the referral: applies `edit` to a copy and writes it. */
  edit(id: string, edit: (referral: Record<string, unknown>) => void): StoreEntry {
    const current = this.get(id);
    if (current === undefined) throw new Error(`Unknown referral ${id}`);
    const draft = deepClone(current.doc);
    edit(draft);
    if (!isPlainObject(draft)) throw new Error('The edit must leave the referral a JSON object');
    return this.write(id, draft);
  }
}
