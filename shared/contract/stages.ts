/**
 * `GET /api/stages`: the CRM stages STAGE_MAP maps and their targets (docs/stages.md), the list the Power
 * Automate connector shows as the Stage dropdown (`x-ms-dynamic-values`). The schema documents the answer
 * (OpenAPI, connector) and the tests parse real answers with it.
 */
import { z } from 'zod';
import { STAGE_PRESETS, type StageList } from '../core/stages.js';
import type { Expect, Extends } from './responses.js';

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

/** The list and its documented schema are the same shape, checked at compile time. */
export type StageListTypeChecks = [
  Expect<Extends<z.output<typeof stageListSchema>, StageList>>,
  Expect<Extends<StageList, z.output<typeof stageListSchema>>>,
];
