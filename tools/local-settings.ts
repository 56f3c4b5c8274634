/**
 * `local.settings.json` `Values`, as `func` reads them: the settings of a local run. Variables already
 * set in the environment win. Used by `npm start` and `npm run auth:bootstrap`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The file's `Values` as strings (empty when there is no file); null entries are left out. */
export function readLocalSettings(dir: string): Record<string, string> {
  const file = join(dir, 'local.settings.json');
  if (!existsSync(file)) return {};
  const settings = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, unknown> };
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(settings.Values ?? {})) {
    if (value !== null && value !== undefined) values[name] = String(value);
  }
  return values;
}
