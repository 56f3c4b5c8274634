/**
 * The CRM's own stage names, mapped to a Partner Center status by configuration (`STAGE_MAP`,
 * docs/stages.md): the presets for the default stages of Dynamics 365, Salesforce and HubSpot, the parsing
 * and validation of a map of your own, and the lookup an event's `stage` goes through. Pure, no I/O.
 *
 * A target is written like the event's own fields, with the same shorthands: `Status/Substatus`, a
 * substatus alone (`Won` is `Closed/Won`), `Active` alone (`Active/Accepted`) or `New` alone (the current
 * New substatus is kept); `Closed` alone, and a substatus of another status, are refused. `null` maps a
 * stage to no status change at all. Stage names match ignoring case and surrounding whitespace.
 */
import {
  STATUSES,
  type Status,
  SUBSTATUSES,
  SUBSTATUSES_BY_STATUS,
  type Substatus,
  statusOfSubstatus,
} from './referral.js';

/** What a stage maps to: a status with its substatus (undefined with `New` alone), or null for no change. */
export type StageTarget = { status: Status; substatus?: Substatus } | null;

interface StageEntry {
  /** The stage name as configured (its spelling is what the list shows). */
  stage: string;
  target: StageTarget;
}

export const STAGE_PRESETS = ['dynamics365', 'salesforce', 'hubspot'] as const;
type StagePreset = (typeof STAGE_PRESETS)[number];

export interface StageMap {
  /** The preset it came from, or `custom` (a JSON object of your own). */
  source: StagePreset | 'custom';
  entries: readonly StageEntry[];
  /** By {@link normaliseStage} of the name. */
  byName: ReadonlyMap<string, StageEntry>;
}

/** How a stage name is compared: surrounding whitespace and case are ignored. */
export function normaliseStage(name: string): string {
  return name.trim().toLowerCase();
}

/** The target as text: `Closed/Won`, `New` (the current New substatus kept), or null. */
export function formatTarget(target: StageTarget): string | null {
  if (target === null) return null;
  return target.substatus === undefined ? target.status : `${target.status}/${target.substatus}`;
}

/**
 * A target written as the event's fields are (`Closed/Won`, `Won`, `Active`, `New`), any casing and
 * surrounding whitespace; an error message when it is not a valid status/substatus pair.
 */
export function parseTarget(text: string): { target: StageTarget } | { error: string } {
  const parts = text.split('/').map((part) => part.trim().toLowerCase());
  const statusOf = (word: string | undefined) => STATUSES.find((s) => s.toLowerCase() === word);
  const substatusOf = (word: string | undefined) => SUBSTATUSES.find((s) => s.toLowerCase() === word);
  const expected = `a status (New, Active), a substatus (${SUBSTATUSES.join(', ')}) or Status/Substatus such as Closed/Won`;
  if (parts.length === 1) {
    const [word] = parts;
    const status = statusOf(word);
    const substatus = substatusOf(word);
    if (substatus) return { target: { status: statusOfSubstatus(substatus), substatus } };
    if (status === 'Active') return { target: { status, substatus: 'Accepted' } };
    if (status === 'New') return { target: { status } };
    if (status === 'Closed')
      return { error: 'Closed needs a substatus: Closed/Won, Closed/Lost, Closed/Declined or Closed/Expired' };
    return { error: `"${text}" is not ${expected}` };
  }
  if (parts.length === 2) {
    const status = statusOf(parts[0]);
    const substatus = substatusOf(parts[1]);
    if (!status || !substatus) return { error: `"${text}" is not ${expected}` };
    if (!SUBSTATUSES_BY_STATUS[status].includes(substatus)) {
      return { error: `substatus ${substatus} belongs to status ${statusOfSubstatus(substatus)}, not ${status}` };
    }
    return { target: { status, substatus } };
  }
  return { error: `"${text}" is not ${expected}` };
}

const NEW: StageTarget = { status: 'New' };
const ACTIVE: StageTarget = { status: 'Active', substatus: 'Accepted' };
const WON: StageTarget = { status: 'Closed', substatus: 'Won' };
const LOST: StageTarget = { status: 'Closed', substatus: 'Lost' };
const DECLINED: StageTarget = { status: 'Closed', substatus: 'Declined' };

/**
 * The presets, row by row with their reasoning in docs/stages.md. One rule throughout: until the deal is
 * qualified the referral stays New (the partner has not committed to it); from qualification on it is
 * Active (Accepted); closed stages close it as Won or Lost, and a lead the partner gives up is Declined.
 */
export const PRESET_ENTRIES: Readonly<Record<StagePreset, readonly StageEntry[]>> = {
  // Lead (state Open, Qualified, Disqualified) and opportunity (state Open, Won, Lost) states and status
  // reasons, by their labels. "Open" is both a lead's and an opportunity's state: it changes nothing.
  dynamics365: [
    { stage: 'New', target: NEW },
    { stage: 'Contacted', target: NEW },
    { stage: 'Open', target: null },
    { stage: 'Qualified', target: ACTIVE },
    { stage: 'In Progress', target: ACTIVE },
    { stage: 'On Hold', target: ACTIVE },
    { stage: 'Won', target: WON },
    { stage: 'Lost', target: LOST },
    { stage: 'Out-Sold', target: LOST },
    { stage: 'Canceled', target: LOST },
    { stage: 'No Longer Interested', target: LOST },
    { stage: 'Cannot Contact', target: DECLINED },
    { stage: 'Disqualified', target: DECLINED },
  ],
  // The default StageName picklist of the Opportunity object.
  salesforce: [
    { stage: 'Prospecting', target: NEW },
    { stage: 'Qualification', target: NEW },
    { stage: 'Needs Analysis', target: ACTIVE },
    { stage: 'Value Proposition', target: ACTIVE },
    { stage: 'Id. Decision Makers', target: ACTIVE },
    { stage: 'Perception Analysis', target: ACTIVE },
    { stage: 'Proposal/Price Quote', target: ACTIVE },
    { stage: 'Negotiation/Review', target: ACTIVE },
    { stage: 'Closed Won', target: WON },
    { stage: 'Closed Lost', target: LOST },
  ],
  // The default sales pipeline's deal stages: the internal values the API and Power Automate send, and
  // their labels.
  hubspot: [
    { stage: 'appointmentscheduled', target: NEW },
    { stage: 'qualifiedtobuy', target: ACTIVE },
    { stage: 'presentationscheduled', target: ACTIVE },
    { stage: 'decisionmakerboughtin', target: ACTIVE },
    { stage: 'contractsent', target: ACTIVE },
    { stage: 'closedwon', target: WON },
    { stage: 'closedlost', target: LOST },
    { stage: 'Appointment Scheduled', target: NEW },
    { stage: 'Qualified To Buy', target: ACTIVE },
    { stage: 'Presentation Scheduled', target: ACTIVE },
    { stage: 'Decision Maker Bought-In', target: ACTIVE },
    { stage: 'Contract Sent', target: ACTIVE },
    { stage: 'Closed Won', target: WON },
    { stage: 'Closed Lost', target: LOST },
  ],
};

/** Builds the map of validated entries; throws on a duplicate name (callers validate first). */
function mapOf(source: StageMap['source'], entries: readonly StageEntry[]): StageMap {
  const byName = new Map<string, StageEntry>();
  for (const entry of entries) {
    const key = normaliseStage(entry.stage);
    if (byName.has(key)) throw new Error(`stage "${entry.stage}" is given twice`);
    byName.set(key, entry);
  }
  return { source, entries, byName };
}

export function presetStageMap(preset: StagePreset): StageMap {
  return mapOf(preset, PRESET_ENTRIES[preset]);
}

/** The stage's entry, matching case-insensitively and ignoring surrounding whitespace. */
export function lookupStage(map: StageMap, name: string): StageEntry | undefined {
  return map.byName.get(normaliseStage(name));
}

/** The longest stage name a map may hold (as the event's `stage` field accepts). */
export const MAX_STAGE_LENGTH = 256;

/**
 * `STAGE_MAP` as set: a preset name (any casing), or a JSON object `{ "<stage>": "<target>" | null }`.
 * Every problem names its entry; the map is returned only when there is none.
 */
export function parseStageMap(text: string): { map: StageMap } | { problems: string[] } {
  const trimmed = text.trim();
  const preset = STAGE_PRESETS.find((name) => name === trimmed.toLowerCase());
  if (preset) return { map: presetStageMap(preset) };
  if (!trimmed.startsWith('{')) {
    return {
      problems: [
        `STAGE_MAP must be ${STAGE_PRESETS.join(', ')} or a JSON object such as {"Closed Won": "Closed/Won", "Needs Analysis": null}`,
      ],
    };
  }
  const members = readFlatObject(trimmed);
  if ('error' in members) return { problems: [`STAGE_MAP is not a JSON object of stage names: ${members.error}`] };
  const problems: string[] = [];
  const entries: StageEntry[] = [];
  const seen = new Map<string, string>();
  for (const [stage, value] of members.members) {
    const shown = JSON.stringify(stage);
    const key = normaliseStage(stage);
    if (key === '') {
      problems.push(`STAGE_MAP entry ${shown}: a stage name must not be empty or blank`);
      continue;
    }
    if (stage.length > MAX_STAGE_LENGTH) {
      problems.push(`STAGE_MAP entry ${shown}: a stage name is at most ${MAX_STAGE_LENGTH} characters`);
      continue;
    }
    const first = seen.get(key);
    if (first !== undefined) {
      problems.push(
        `STAGE_MAP entry ${shown}: the same stage as ${JSON.stringify(first)} (case and surrounding whitespace are ignored)`,
      );
      continue;
    }
    seen.set(key, stage);
    if (value === null) {
      entries.push({ stage, target: null });
      continue;
    }
    const parsed = parseTarget(value);
    if ('error' in parsed) problems.push(`STAGE_MAP entry ${shown}: ${parsed.error}`);
    else entries.push({ stage, target: parsed.target });
  }
  if (problems.length === 0 && entries.length === 0) {
    problems.push('STAGE_MAP is an empty object: name at least one stage, or remove the setting');
  }
  if (problems.length > 0) return { problems };
  return { map: mapOf('custom', entries) };
}

const WHITESPACE = /[ \t\n\r]*/y;
/** A quoted string token; JSON.parse then refuses what JSON does not allow in it (control characters, bad escapes). */
const JSON_STRING = /"(?:[^"\\]|\\.)*"/y;

/**
 * A flat JSON object whose values are strings or null, its members in order, duplicates kept (JSON.parse
 * would silently keep only the last of two equal keys, and a key given twice must be reported).
 */
function readFlatObject(text: string): { members: Array<[string, string | null]> } | { error: string } {
  let at = 0;
  const skip = () => {
    WHITESPACE.lastIndex = at;
    WHITESPACE.exec(text);
    at = WHITESPACE.lastIndex;
  };
  const string = (): string | undefined => {
    JSON_STRING.lastIndex = at;
    const match = JSON_STRING.exec(text);
    if (!match) return undefined;
    try {
      const value = JSON.parse(match[0]) as string;
      at = JSON_STRING.lastIndex;
      return value;
    } catch {
      return undefined;
    }
  };
  const members: Array<[string, string | null]> = [];
  skip();
  if (text[at] !== '{') return { error: 'it must start with {' };
  at++;
  skip();
  if (text[at] === '}') {
    at++;
  } else {
    for (;;) {
      skip();
      const key = string();
      if (key === undefined) return { error: `a stage name (a JSON string) is expected at character ${at + 1}` };
      skip();
      if (text[at] !== ':') return { error: `":" is expected after ${JSON.stringify(key)}` };
      at++;
      skip();
      let value: string | null;
      if (text.startsWith('null', at)) {
        value = null;
        at += 4;
      } else {
        const target = string();
        if (target === undefined) {
          return {
            error: `entry ${JSON.stringify(key)}: the target must be a string such as "Closed/Won", or null`,
          };
        }
        value = target;
      }
      members.push([key, value]);
      skip();
      if (text[at] === ',') {
        at++;
        continue;
      }
      if (text[at] === '}') {
        at++;
        break;
      }
      return { error: `"," or "}" is expected at character ${at + 1}` };
    }
  }
  skip();
  if (at !== text.length) return { error: `unexpected text after the object at character ${at + 1}` };
  return { members };
}

/** `GET /api/stages`: the configured stages and their targets (contract/stages.ts documents it). */
export interface StageList {
  source: StageMap['source'] | null;
  stages: Array<{ name: string; target: string | null; title: string }>;
}

/** The list of a map (or of no map). Plain data: the function serving it loads no schema. */
export function stageList(map: StageMap | undefined): StageList {
  if (!map) return { source: null, stages: [] };
  return {
    source: map.source,
    stages: map.entries.map(({ stage, target }) => {
      const shown = formatTarget(target);
      return { name: stage, target: shown, title: `${stage} (${shown ?? 'no status change'})` };
    }),
  };
}
