/**
 * The README stays a short, accurate front page: the two commands first, at most 250 lines, the request table
 * naming every field of the contract, and the configuration table listing every setting the app validates
 * (shared/config.ts), which local.settings.sample.json lists too; the error table naming every code of the catalogue.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { CONFIGURATION_VARIABLES, parseConfig } from '../../shared/config.js';
import { updateEventSchema } from '../../shared/contract/update-event.js';
import { ERROR_DEFINITIONS } from '../../shared/core/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The first-column names (in backticks) of the table rows of the README section `heading`. */
function tableNames(heading: string): Set<string> {
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(0);
  const level = heading.split(' ')[0] as string;
  const end = readme.indexOf(`\n${level} `, start + heading.length + 2);
  const section = readme.slice(start, end === -1 ? undefined : end);
  const rows = section.split('\n').filter((line) => line.startsWith('| `'));
  return new Set(
    rows.flatMap((row) => [...(row.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] as string)),
  );
}

it('has a configuration table row for every setting the app reads', () => {
  const documented = tableNames('## Configuration');
  expect(CONFIGURATION_VARIABLES.filter((name) => !documented.has(name))).toEqual([]);
});

it('is at most 250 lines and starts with the two commands', () => {
  expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(250);
  const first = /```sh\n([\s\S]*?)\n```/.exec(readme)?.[1]?.split('\n') ?? [];
  expect(first[0]).toMatch(/^npm ci && npm start\s/);
  expect(first[1]).toMatch(/^npm ci && npm test\s/);
  expect(readme.indexOf('```sh')).toBeLessThan(readme.indexOf('\n## '));
});

it('has a request table row for every field of the update event', () => {
  const documented = tableNames('### Request');
  expect(Object.keys(updateEventSchema.shape).filter((name) => !documented.has(name))).toEqual([]);
});

it('has an error table row for every code of the error catalogue, with its status', () => {
  const start = readme.indexOf('\n### Errors\n');
  const section = readme.slice(start, readme.indexOf('\n## ', start));
  for (const [code, { status }] of Object.entries(ERROR_DEFINITIONS)) {
    expect(section, code).toMatch(new RegExp(`\\| ${status}\\s+\\| \`${code}\``));
  }
});

it('local.settings.sample.json lists exactly the settings of the configuration table, and the app accepts it', () => {
  const sample = JSON.parse(readFileSync(new URL('../../local.settings.sample.json', import.meta.url), 'utf8')) as {
    Values: Record<string, string>;
  };
  const listed = Object.keys(sample.Values).filter((name) => name !== 'FUNCTIONS_WORKER_RUNTIME');
  expect(listed.sort()).toEqual([...tableNames('## Configuration')].sort());
  for (const name of CONFIGURATION_VARIABLES) expect(listed).toContain(name);
  const config = parseConfig(sample.Values);
  expect(config.ok ? [] : config.problems).toEqual([]);
});
