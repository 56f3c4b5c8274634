/** The README's configuration table lists every setting the app validates (shared/config.ts). */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { CONFIGURATION_VARIABLES } from '../../shared/config.js';

it('has a configuration table row for every setting the app reads', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(
    readme.indexOf('\n## Configuration\n'),
    readme.indexOf('\n## ', readme.indexOf('\n## Configuration\n') + 5),
  );
  const rows = section.split('\n').filter((line) => line.startsWith('| `'));
  const documented = new Set(
    rows.flatMap((row) => [...(row.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1])),
  );
  expect(CONFIGURATION_VARIABLES.filter((name) => !documented.has(name))).toEqual([]);
});
