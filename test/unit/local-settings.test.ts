import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readLocalSettings } from '../../tools/local-settings.js';

it('reads local.settings.json Values as strings, like func, and nothing when the file is absent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'local-settings-'));
  expect(readLocalSettings(dir)).toEqual({});
  writeFileSync(
    join(dir, 'local.settings.json'),
    JSON.stringify({
      IsEncrypted: false,
      Values: { PORT: 7072, IDEMPOTENCY_STORE: 'memory', EMPTY: '', NOTHING: null },
    }),
  );
  expect(readLocalSettings(dir)).toEqual({ PORT: '7072', IDEMPOTENCY_STORE: 'memory', EMPTY: '' });
});

it('names the file and what to fix when local.settings.json is not JSON or its Values is not an object', () => {
  const dir = mkdtempSync(join(tmpdir(), 'local-settings-'));
  const file = join(dir, 'local.settings.json');
  writeFileSync(file, '{ "Values": { "PORT": "7072", } }');
  expect(() => readLocalSettings(dir)).toThrow(`${file} is not valid JSON (`);
  expect(() => readLocalSettings(dir)).toThrow('local.settings.sample.json');
  writeFileSync(file, '{ "Values": ["PORT=7072"] }');
  expect(() => readLocalSettings(dir)).toThrow(`${file}: "Values" must be an object of settings`);
  writeFileSync(file, '"PORT=7072"');
  expect(() => readLocalSettings(dir)).toThrow(`${file} must be a JSON object`);
});
