/**
 * STAGE_MAP's pure part (shared/core/stages.ts): the presets, target parsing with the event's shorthands,
 * normalisation and lookup (fast-check), and the map of your own read back entry by entry.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STATUSES, SUBSTATUSES, SUBSTATUSES_BY_STATUS, statusOfSubstatus } from '../../shared/core/referral.js';
import {
  formatTarget,
  lookupStage,
  normaliseStage,
  PRESET_ENTRIES,
  parseStageMap,
  parseTarget,
  presetStageMap,
  STAGE_PRESETS,
  type StageTarget,
} from '../../shared/core/stages.js';
import { isAllowedTransition } from '../../shared/core/transitions.js';

/** Surrounding whitespace the stage names may come with (spaces, tabs, newlines, a no-break space). */
const padding = fc.array(fc.constantFrom(' ', '\t', '\n', '\u00a0'), { maxLength: 3 }).map((a) => a.join(''));
/** The same text in a random casing. */
const recased = (text: string) =>
  fc
    .array(fc.boolean(), { minLength: text.length, maxLength: text.length })
    .map((upper) => [...text].map((c, i) => (upper[i] ? c.toUpperCase() : c.toLowerCase())).join(''));

describe('the presets', () => {
  it('each is a valid map: no stage twice, every target a valid status/substatus pair', () => {
    for (const preset of STAGE_PRESETS) {
      const map = presetStageMap(preset);
      expect(map.entries.length, preset).toBe(map.byName.size);
      for (const { stage, target } of map.entries) {
        const text = formatTarget(target);
        if (text !== null) expect(parseTarget(text), `${preset} ${stage}`).toEqual({ target });
      }
    }
  });

  it('read back through parseStageMap as a JSON object of your own, each gives the same entries', () => {
    for (const preset of STAGE_PRESETS) {
      const json = JSON.stringify(
        Object.fromEntries(PRESET_ENTRIES[preset].map((e) => [e.stage, formatTarget(e.target)])),
      );
      const parsed = parseStageMap(json);
      expect('map' in parsed && parsed.map.entries, preset).toEqual(PRESET_ENTRIES[preset]);
    }
  });

  it('close the documented stages as Won and Lost, and the first stages keep the referral New', () => {
    const targetOf = (preset: (typeof STAGE_PRESETS)[number], stage: string) =>
      formatTarget(lookupStage(presetStageMap(preset), stage)?.target ?? null);
    expect(targetOf('salesforce', 'Closed Won')).toBe('Closed/Won');
    expect(targetOf('salesforce', 'Closed Lost')).toBe('Closed/Lost');
    expect(targetOf('salesforce', 'Prospecting')).toBe('New');
    expect(targetOf('salesforce', 'Negotiation/Review')).toBe('Active/Accepted');
    expect(targetOf('hubspot', 'closedwon')).toBe('Closed/Won');
    expect(targetOf('hubspot', 'closedlost')).toBe('Closed/Lost');
    expect(targetOf('hubspot', 'qualifiedtobuy')).toBe('Active/Accepted');
    expect(targetOf('dynamics365', 'Won')).toBe('Closed/Won');
    expect(targetOf('dynamics365', 'Out-Sold')).toBe('Closed/Lost');
    expect(targetOf('dynamics365', 'Disqualified')).toBe('Closed/Declined');
    expect(targetOf('dynamics365', 'Open')).toBeNull();
  });
});

describe('targets: the event fields shorthands', () => {
  it('every valid Status/Substatus pair, a substatus alone, Active and New alone; in any casing and spacing', () => {
    for (const status of STATUSES) {
      for (const substatus of SUBSTATUSES_BY_STATUS[status]) {
        expect(parseTarget(`${status}/${substatus}`)).toEqual({ target: { status, substatus } });
        expect(parseTarget(` ${status.toUpperCase()} / ${substatus.toLowerCase()} `)).toEqual({
          target: { status, substatus },
        });
      }
    }
    for (const substatus of SUBSTATUSES) {
      expect(parseTarget(substatus)).toEqual({ target: { status: statusOfSubstatus(substatus), substatus } });
    }
    expect(parseTarget('active')).toEqual({ target: { status: 'Active', substatus: 'Accepted' } });
    expect(parseTarget('New')).toEqual({ target: { status: 'New' } });
  });

  it('refuses Closed alone, a substatus of another status, and anything else', () => {
    fc.assert(
      fc.property(fc.constantFrom(...STATUSES), fc.constantFrom(...SUBSTATUSES), (status, substatus) => {
        const valid = SUBSTATUSES_BY_STATUS[status].includes(substatus);
        expect('target' in parseTarget(`${status}/${substatus}`)).toBe(valid);
      }),
    );
    for (const text of ['Closed', 'Open', '', 'Closed/Won/Lost', 'Won/Closed', '/Won']) {
      expect('error' in parseTarget(text), text).toBe(true);
    }
  });

  it('every target parsed is a state the transition rules know (with New alone: any New substatus), and only New goes back', () => {
    fc.assert(
      fc.property(fc.constantFrom(...STATUSES), fc.constantFrom(...SUBSTATUSES, ''), (status, substatus) => {
        const parsed = parseTarget(substatus ? `${status}/${substatus}` : status);
        if (!('target' in parsed) || parsed.target === null) return;
        const to = { status: parsed.target.status, substatus: parsed.target.substatus ?? 'Pending' };
        expect(isAllowedTransition({ status: 'New', substatus: 'Pending' }, to)).toBe(true);
        // From an accepted referral, a target that goes back to New is refused and every other one is allowed.
        expect(isAllowedTransition({ status: 'Active', substatus: 'Accepted' }, to)).toBe(to.status !== 'New');
      }),
    );
  });
});

describe('normalisation and lookup', () => {
  it('a stage matches in any casing with any surrounding whitespace, and gives its configured entry', () => {
    const preset = fc.constantFrom(...STAGE_PRESETS);
    fc.assert(
      fc.property(
        preset.chain((name) => fc.tuple(fc.constant(name), fc.constantFrom(...PRESET_ENTRIES[name]))),
        padding,
        padding,
        ([name, entry], before, after) => {
          const map = presetStageMap(name);
          return fc.assert(
            fc.property(recased(entry.stage), (casing) => {
              expect(lookupStage(map, `${before}${casing}${after}`)).toBe(entry);
            }),
            { numRuns: 5 },
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a name found is one whose normal form is a configured stage; normalising is idempotent', () => {
    const map = presetStageMap('salesforce');
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.constantFrom(...map.entries.map((e) => ` ${e.stage.toUpperCase()}`))),
        (name) => {
          expect(normaliseStage(normaliseStage(name))).toBe(normaliseStage(name));
          const found = lookupStage(map, name);
          expect(found !== undefined).toBe(map.entries.some((e) => normaliseStage(e.stage) === normaliseStage(name)));
        },
      ),
    );
  });

  it('a map of your own reads back entry by entry, and a key given twice after normalisation is always refused', () => {
    const target: fc.Arbitrary<StageTarget> = fc.constantFrom(
      null,
      ...[...STATUSES].flatMap((status) => SUBSTATUSES_BY_STATUS[status].map((substatus) => ({ status, substatus }))),
      { status: 'New' as const },
    );
    const stage = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() !== '');
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(stage, target), { minLength: 1, maxLength: 8, selector: ([s]) => normaliseStage(s) }),
        (entries) => {
          const json = `{${entries.map(([s, t]) => `${JSON.stringify(s)}: ${JSON.stringify(formatTarget(t))}`).join(', ')}}`;
          const parsed = parseStageMap(json);
          expect(parsed).toEqual({
            map: expect.objectContaining({
              source: 'custom',
              entries: entries.map(([s, t]) => ({ stage: s, target: t })),
            }),
          });
          const [first] = entries[0] as [string, StageTarget];
          const twice = `{${json.slice(1, -1)}, ${JSON.stringify(` ${first.toUpperCase()} `)}: null}`;
          const refused = parseStageMap(twice);
          expect('problems' in refused && refused.problems).toEqual([
            expect.stringContaining(`the same stage as ${JSON.stringify(first)}`),
          ]);
        },
      ),
    );
  });
});
