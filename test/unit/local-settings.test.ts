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
