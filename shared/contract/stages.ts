/**
 * `GET /api/stages`: the CRM stages STAGE_MAP maps and their targets (docs/stages.md), the list the Power
 * Automate connector shows as the Stage dropdown (`x-ms-dynamic-values`). The schema documents the answer
 * (OpenAPI, connector) and the tests parse real answers with it.
 */
import { z } from 'zod';
import { formatTarget, STAGE_PRESETS, type StageMap } from '../core/stages.js';

/**
 * A CRM stage and its target, as the stage list and an event's answer (`stage`) both show it: a new schema per
 * use, so that zod does not share it as a component of its own.
 */
export const stageMapping = () =>
  z.strictObject({
    name: z.string().meta({
      title: 'Name',
      description: 'The stage as STAGE_MAP spells it: the value an event sends as its stage.',
      examples: ['Closed Won'],
    }),
    target: z
      .string()
      .nullable()
      .meta({
        title: 'Target',
        description:
          'What it maps to: Status/Substatus such as Closed/Won, New (the current New substatus kept), or null (no status change).',
        examples: ['Closed/Won'],
      }),
  });

export const stageSchema = stageMapping()
  .extend({
    title: z.string().meta({
      title: 'Title',
      description: 'The stage and its target, as the dropdown shows it.',
      examples: ['Closed Won (Closed/Won)'],
    }),
  })
  .meta({ title: 'Stage', description: 'One CRM stage of STAGE_MAP and the status it maps to.' });

export const stageListSchema = z
  .strictObject({
    source: z
      .enum([...STAGE_PRESETS, 'custom'])
      .nullable()
      .meta({
        title: 'Source',
        description: 'The preset STAGE_MAP names, custom for a JSON object of your own, or null when it is unset.',
      }),
    stages: z.array(stageSchema).meta({
      title: 'Stages',
      description: 'The configured stages, in the order of STAGE_MAP; empty when it is unset.',
    }),
  })
  .meta({ title: 'Stage List', description: 'The CRM stages an event may name, and what each maps to.' });

export type StageList = z.output<typeof stageListSchema>;

/** The list of a map (or of no map). */
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
