/**
 * Use case behind `GET /api/stages`: the CRM stages `STAGE_MAP` maps and their targets (docs/stages.md), the Power
 * Automate connector's Stage dropdown. Plain data: it loads no schema (contract/stages.ts documents the answer).
 */
import type { Config } from '../config.js';
import { type StageList, stageList } from '../core/stages.js';

export function listStages(runtime: { config: Pick<Config, 'inbound'> }): StageList {
  return stageList(runtime.config.inbound.stageMap);
}
