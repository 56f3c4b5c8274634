/**
 * The npm scripts empty dist/ (the build's output) and nothing else: the deploy package of `npm run package` lives
 * in out/package/, so `npm test`, `npm start` or `npm run connector` after it keep the zip (docs/deploy-package.md).
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const scripts = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts;

it('no npm script removes anything but dist/, so out/package/ outlives every later script', () => {
  const removed = Object.entries(scripts).flatMap(([name, command]) =>
    [...command.matchAll(/(?:clean\.mjs|rimraf|rm -rf?)\s+([^&|;]+)/g)].map(
      (m) => `${name}: ${(m[1] as string).trim()}`,
    ),
  );
  expect(removed).toEqual(['build: dist']);
  // Every script that builds goes through `npm run build`; only `package` writes out/package/.
  for (const [name, command] of Object.entries(scripts)) {
    if (name !== 'package') expect(command, name).not.toContain('tools/package.js');
  }
});
