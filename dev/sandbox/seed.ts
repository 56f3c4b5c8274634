/**
 * Sample referrals for the sandbox, one JSON file each in dev/sandbox/fixtures/ (named by state). Bodies
 * follow the referral JSON of docs/partner-center-api.md#wire-format and deliberately carry fields the app does not
 * know: `partnerRole`, `solutionAreas`, `acceptedDateTime`, `attributes`,
 * `details.requirements.additionalRequirements`, `customerProfile.ids`, `address.region` and nested custom
 * objects. A full-replace PUT that drops any of them erases them from the store, which is how tests detect
 * data loss. `activeSparse` is Active with `details: null` and no optional extras (the "create details"
 * path); `unknownState` is Active/Error, a state the transition table does not know (writes are refused).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deepClone, isPlainObject, type StoredReferral } from './json.js';
import { utcNow7 } from './time.js';

export type { StoredReferral } from './json.js';

const NAMES = [
  'newPending',
  'newReceived',
  'activeAccepted',
  'closedWon',
  'closedLost',
  'closedDeclined',
  'closedExpired',
  'activeSparse',
  'unknownState',
] as const;
export type SeedName = (typeof NAMES)[number];

/** fixtures/ next to this module (dev/sandbox/), else in the source tree above dist/dev/sandbox/ (tsc copies no JSON). */
const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = [join(HERE, 'fixtures'), join(HERE, '..', '..', '..', 'dev', 'sandbox', 'fixtures')].find((dir) =>
  existsSync(join(dir, `${NAMES[0]}.json`)),
);

function load(name: SeedName): StoredReferral {
  if (FIXTURES === undefined) throw new Error(`dev/sandbox/fixtures/ not found from ${HERE}`);
  const referral: unknown = JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
  if (!isPlainObject(referral) || typeof referral.id !== 'string') throw new Error(`fixtures/${name}.json: no id`);
  return { ...referral, id: referral.id };
}

const SEED: Readonly<Record<SeedName, StoredReferral>> = Object.fromEntries(
  NAMES.map((name) => [name, load(name)]),
) as Record<SeedName, StoredReferral>;

/** Fixed ids of the seeded referrals, by state. */
export const SEED_IDS = Object.fromEntries(NAMES.map((name) => [name, SEED[name].id])) as Readonly<
  Record<SeedName, string>
>;

/** Fresh deep copies of every seeded referral (without eTag; the store assigns one). */
export function seedReferrals(): StoredReferral[] {
  return NAMES.map((name) => deepClone(SEED[name]));
}

/** A fresh deep copy of one seeded referral. */
export function seedReferral(name: SeedName): StoredReferral {
  return deepClone(SEED[name]);
}

/**
 * A new full New/Pending referral with random `id` and `engagementId`.
 * `overrides` are shallow-merged over the top level (deep-copied first), so
 * `{ details: … }` replaces the whole details object.
 */
export function makeReferral(overrides: Record<string, unknown> = {}): StoredReferral {
  const now = utcNow7();
  const referral: Record<string, unknown> = {
    ...seedReferral('newPending'),
    id: randomUUID(),
    engagementId: randomUUID(),
    name: 'Generated test referral',
    createdDateTime: now,
    updatedDateTime: now,
    ...deepClone(overrides),
  };
  const id = referral.id;
  if (typeof id !== 'string' || id === '') throw new Error('makeReferral: id must be a non-empty string');
  return { ...referral, id };
}
