/**
 * The reliability run's plan (pure, fixed by the seed): 20 events per referral (changes, an activation of
 * a New referral, an event older than the two before it, and for every fifth referral a close, a "Won
 * again" and events after the close), and the steps that deliver them: each event once, ~20 % with a
 * concurrent copy, ~10 % redelivered 1–4 events later, ~3 % followed by the same id with another body.
 */
import { mulberry32 } from '../../../dev/sandbox/random-faults.js';
import type { Field, Json, JsonRecord, Values } from './model.js';
import { COPY_SHARE, EVENTS_PER_REFERRAL, REDELIVERY_SHARE, REUSE_SHARE } from './parameters.js';

export type EventKind = 'change' | 'activate' | 'close' | 'won-again' | 'after-close' | 'older';

export interface PlannedEvent {
  id: string;
  referralId: string;
  kind: EventKind;
  /** occurredAt as an instant. */
  occurredAtMs: number;
  /** The request body, serialized once: every delivery of the event sends these exact bytes. */
  bodyText: string;
  /** What the sandbox must hold after the event, per field it names (normalized as the contract says). */
  values: Values;
  /** Fields whose value no other event (or reused body) of the run carries. */
  unique: Field[];
}

export type Step =
  | { type: 'deliver'; event: PlannedEvent; copy: boolean }
  | { type: 'redeliver'; event: PlannedEvent }
  | { type: 'reuse'; event: PlannedEvent; altered: PlannedEvent };

const UNIQUE_FIELDS = ['notes', 'statusReason', 'name', 'externalReferenceId', 'dealValue', 'closingDate'] as const;
export type UniqueInput = (typeof UNIQUE_FIELDS)[number];
const CURRENCIES = ['EUR', 'USD', 'GBP', 'CAD', 'JPY', 'CHF', 'AUD', 'SEK'] as const;
const T0 = Date.UTC(2026, 10, 1, 8, 0, 0);

export function buildPlan(seed: number, referralIds: readonly string[], startsNew: (index: number) => boolean) {
  const random = mulberry32(seed ^ 0x5eed5eed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chance = (p: number) => random() < p;
  let unique = 0;
  let reuses = 0;

  /** One unique value: the request field, its value as sent, the stored field and value. */
  const uniqueValue = (input: UniqueInput): { sent: Json; field: Field; stored: Json } => {
    const n = ++unique;
    switch (input) {
      case 'notes': {
        const text = chance(0.2) ? `Notes #${n}: Zürich — 東京 ✓ "quoted" \\ back` : `notes #${n}`;
        return { sent: text, field: 'notes', stored: text };
      }
      case 'statusReason':
        return { sent: `reason #${n}`, field: 'statusReason', stored: `reason #${n}` };
      case 'name':
        return { sent: `Referral name #${n}`, field: 'name', stored: `Referral name #${n}` };
      case 'externalReferenceId':
        return { sent: `crm-${n}`, field: 'externalReferenceId', stored: `crm-${n}` };
      case 'dealValue': {
        const value = 1000 + n * 7 + 0.25;
        return { sent: value, field: 'dealValue', stored: value };
      }
      case 'closingDate': {
        const day = new Date(Date.UTC(2027, 0, 1) + n * 86_400_000).toISOString().slice(0, 10);
        // Either a date or a date-time with an offset: both normalize to midnight UTC of that day.
        const sent = chance(0.5) ? day : `${day}T05:30:00+05:30`;
        return { sent, field: 'closingDateTime', stored: `${day}T00:00:00Z` };
      }
    }
  };

  const occurredAtText = (ms: number): string =>
    chance(0.25) ? new Date(ms + 3_600_000).toISOString().replace('Z', '+01:00') : new Date(ms).toISOString();

  const makeEvent = (
    referralId: string,
    kind: EventKind,
    occurredAtMs: number,
    id: string,
    build: (body: JsonRecord, values: Values, uniqueFields: Field[]) => void,
  ): PlannedEvent => {
    const body: JsonRecord = { referralId, occurredAt: occurredAtText(occurredAtMs) };
    const values: Values = {};
    const uniqueFields: Field[] = [];
    build(body, values, uniqueFields);
    return { id, referralId, kind, occurredAtMs, bodyText: JSON.stringify(body), values, unique: uniqueFields };
  };

  /** `count` writable fields (besides any status), the first one unique, currency possibly among the others. */
  const addFields = (body: JsonRecord, values: Values, uniqueFields: Field[], count: number) => {
    const pool: Array<UniqueInput | 'currency'> = [...UNIQUE_FIELDS, 'currency'];
    const first = pick(UNIQUE_FIELDS);
    const chosen: Array<UniqueInput | 'currency'> = [first];
    while (chosen.length < count) {
      const next = pick(pool);
      if (!chosen.includes(next)) chosen.push(next);
    }
    for (const input of chosen) {
      if (input === 'currency') {
        const code = pick(CURRENCIES);
        body.currency = chance(0.3) ? code.toLowerCase() : code;
        values.currency = code;
      } else {
        const { sent, field, stored } = uniqueValue(input);
        body[input] = sent;
        values[field] = stored;
        uniqueFields.push(field);
      }
    }
  };

  const chains: Step[][] = [];
  const events: PlannedEvent[] = [];
  referralIds.forEach((referralId, r) => {
    const isNew = startsNew(r);
    const closes = r % 5 === 0;
    const activateAt = isNew ? 1 + Math.floor(random() * 5) : -1;
    let olderAt = 3 + Math.floor(random() * 12);
    if (olderAt === activateAt) olderAt += 1;
    const planned: PlannedEvent[] = [];
    for (let j = 0; j < EVENTS_PER_REFERRAL; j++) {
      const id = `rel-${seed}-${r}-${j}`;
      const at = T0 + r * 1000 + j * 60_000;
      let kind: EventKind = 'change';
      if (j === activateAt) kind = 'activate';
      else if (j === olderAt) kind = 'older';
      if (closes && j === EVENTS_PER_REFERRAL - 4) kind = 'close';
      else if (closes && j === EVENTS_PER_REFERRAL - 3) kind = 'won-again';
      else if (closes && j > EVENTS_PER_REFERRAL - 3) kind = 'after-close';
      // An older event occurred 30 s before the event two places earlier: older than both events before it.
      const occurredAtMs = kind === 'older' ? at - 2 * 60_000 - 30_000 : at;
      planned.push(
        makeEvent(referralId, kind, occurredAtMs, id, (body, values, uniqueFields) => {
          switch (kind) {
            case 'activate':
              body.status = pick(['Active', 'active', 'ACTIVE']);
              values.status = 'Active';
              values.substatus = 'Accepted';
              addFields(body, values, uniqueFields, 1 + Math.floor(random() * 2));
              return;
            case 'close': {
              body.substatus = pick(['Won', 'won']);
              values.status = 'Closed';
              values.substatus = 'Won';
              const deal = uniqueValue('dealValue');
              body.dealValue = deal.sent;
              values.dealValue = deal.stored;
              uniqueFields.push('dealValue');
              if (chance(0.5)) {
                const closing = uniqueValue('closingDate');
                body.closingDate = closing.sent;
                values.closingDateTime = closing.stored;
                uniqueFields.push('closingDateTime');
              }
              return;
            }
            case 'won-again':
              // A new event that asks for what the referral already holds: a success even though it is Closed.
              body.substatus = 'Won';
              values.status = 'Closed';
              values.substatus = 'Won';
              return;
            default:
              addFields(body, values, uniqueFields, 1 + Math.floor(random() * 3));
          }
        }),
      );
    }
    events.push(...planned);

    // Steps, positioned: event j at 10·j; a redelivery or reuse of event j 1–4 events later (or at the end).
    const positioned: Array<{ at: number; step: Step }> = [];
    planned.forEach((event, j) => {
      positioned.push({ at: j * 10, step: { type: 'deliver', event, copy: chance(COPY_SHARE) } });
      if (chance(REDELIVERY_SHARE)) {
        positioned.push({ at: (j + 1 + Math.floor(random() * 4)) * 10 + 1, step: { type: 'redeliver', event } });
      }
      if (chance(REUSE_SHARE)) {
        reuses++;
        const notes = `reused body #${reuses} of ${event.id}`;
        const original = JSON.parse(event.bodyText) as JsonRecord;
        const altered: PlannedEvent = {
          ...event,
          bodyText: JSON.stringify({ ...original, notes }),
          values: { ...event.values, notes },
          unique: ['notes'],
        };
        positioned.push({ at: (j + 1 + Math.floor(random() * 4)) * 10 + 2, step: { type: 'reuse', event, altered } });
      }
    });
    positioned.sort((a, b) => a.at - b.at);
    chains.push(positioned.map((entry) => entry.step));
  });
  return { chains, events };
}
