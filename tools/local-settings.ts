/**
 * `local.settings.json` `Values`, as `func` reads them: the settings of a local run. Variables already
 * set in the environment win. Used by `npm start` and `npm run auth:bootstrap`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The file's `Values` as strings (empty when there is no file); null entries are left out. A file that is not
 * JSON, or whose `Values` is not an object, throws an error naming the file and what to fix.
 */
export function readLocalSettings(dir: string): Record<string, string> {
  const file = join(dir, 'local.settings.json');
  if (!existsSync(file)) return {};
  let settings: unknown;
  try {
    settings = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(
      `${file} is not valid JSON (${error instanceof Error ? error.message : String(error)}): fix it, or start again from local.settings.sample.json`,
    );
  }
  const given = settings && typeof settings === 'object' ? (settings as { Values?: unknown }).Values : undefined;
  if (given !== undefined && (given === null || typeof given !== 'object' || Array.isArray(given))) {
    throw new Error(`${file}: "Values" must be an object of settings, { "NAME": "value", … }`);
  }
  if (!settings || typeof settings !== 'object' || Array.isArray(settings)) {
    throw new Error(`${file} must be a JSON object with "Values": { "NAME": "value", … }`);
  }
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries((given ?? {}) as Record<string, unknown>)) {
    if (value !== null && value !== undefined) values[name] = String(value);
  }
  return values;
}
