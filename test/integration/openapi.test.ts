/**
 * GET /api/openapi.json from the built app under the local host, the generator script as `npm run
 * connector` runs it, and what the entry points import at start-up.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../shared/contract/openapi.js';
import { CONNECTOR_FILES } from '../../tools/connector.js';
import { isolatedEnv, REPO_ROOT, useStack } from '../support/stack.js';

const run = promisify(execFile);

describe('GET /api/openapi.json', () => {
  const stack = useStack();
  const url = () => `${stack.hostUrl}/api/openapi.json`;

  it('serves the OpenAPI 3.1 document of the running app, as JSON, without a function key', async () => {
    const response = await fetch(url());
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const served = (await response.json()) as Record<string, unknown>;
    // The app (built, in its own process) serves what the contract's zod schemas generate.
    expect(served).toEqual(buildOpenApiDocument());
    const validator = new Validator();
    const result = await validator.validate(served);
    expect(result.errors ?? []).toEqual([]);
    expect(validator.version).toBe('3.1');
  });

  it('answers 304 to a matching If-None-Match, with the same ETag each time', async () => {
    const first = await fetch(url());
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(first.headers.get('cache-control')).toMatch(/max-age=\d+/);
    expect((await fetch(url())).headers.get('etag')).toBe(etag);
    const again = await fetch(url(), { headers: { 'if-none-match': etag ?? '' } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('only GET is routed', async () => {
    expect((await fetch(url(), { method: 'POST', body: '{}' })).status).toBe(405);
  });
});

/** The relative imports (static and dynamic) of a built file, transitively, as paths under dist/. */
function importGraph(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      visit(resolve(dirname(file), match[1] as string));
    }
  };
  visit(join(REPO_ROOT, entry));
  return [...seen].map((file) => relative(join(REPO_ROOT, 'dist'), file)).sort();
}

describe('start-up cost', () => {
  it('the referral-updates entry point never loads the OpenAPI builder or the response schemas', () => {
    const graph = importGraph('dist/functions/referral-updates.js');
    expect(graph).toContain('shared/contract/update-event.js');
    expect(graph).not.toContain('shared/contract/openapi.js');
    expect(graph).not.toContain('shared/contract/responses.js');
  });

  it('the stages entry point loads no response schema: the list is plain data', () => {
    const graph = importGraph('dist/functions/stages.js');
    expect(graph).toContain('shared/core/stages.js');
    expect(graph).not.toContain('shared/contract/stages.js');
    expect(graph).not.toContain('shared/contract/responses.js');
  });

  it('the openapi entry point loads the contract only: no settings, no runtime, no Partner Center client', () => {
    expect(importGraph('dist/functions/openapi.js')).toEqual([
      'functions/openapi.js',
      'shared/contract/async.js',
      'shared/contract/headers.js',
      'shared/contract/openapi.js',
      'shared/contract/responses.js',
      'shared/contract/stages.js',
      'shared/contract/update-event.js',
      // errors.ts recognises an abort (core/abort.ts: no imports).
      'shared/core/abort.js',
      'shared/core/errors.js',
      'shared/core/referral.js',
      'shared/core/stages.js',
    ]);
  });
});

describe('npm run connector (the built generator, in plain Node)', () => {
  const out = mkdtempSync(join(tmpdir(), 'connector-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('writes exactly the committed connector files', async () => {
    const { stdout } = await run(process.execPath, ['dist/tools/generate-connector.js', '--out', out], {
      cwd: REPO_ROOT,
      env: isolatedEnv(),
    });
    for (const name of CONNECTOR_FILES) {
      expect(stdout).toContain(name);
      expect(readFileSync(join(out, name)), `connector/${name} is stale: run npm run connector`).toEqual(
        readFileSync(join(REPO_ROOT, 'connector', name)),
      );
    }
  });

  it('--host writes a connector for another function app; a bad host fails the script', async () => {
    await run(
      process.execPath,
      ['dist/tools/generate-connector.js', '--out', out, '--host', 'contoso.azurewebsites.net'],
      {
        cwd: REPO_ROOT,
        env: isolatedEnv(),
      },
    );
    expect(JSON.parse(readFileSync(join(out, 'apiDefinition.swagger.json'), 'utf8')).host).toBe(
      'contoso.azurewebsites.net',
    );
    await expect(
      run(process.execPath, ['dist/tools/generate-connector.js', '--out', out, '--host', 'https://x/api'], {
        cwd: REPO_ROOT,
        env: isolatedEnv(),
      }),
    ).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('host name') });
  });
});
