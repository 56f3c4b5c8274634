/**
 * `npm run connector`: writes the Power Automate custom connector, connector/apiDefinition.swagger.json
 * and connector/apiProperties.json, generated from the contract's zod schemas (tools/connector.ts).
 * Commit the result: a test fails when the committed files differ from what this writes.
 *
 *   npm run connector                                   # connector/, host your-function-app.azurewebsites.net
 *   npm run connector -- --host contoso-referrals.azurewebsites.net --out /tmp/connector
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CONNECTOR_FILES, connectorFiles, DEFAULT_HOST, MAX_DEFINITION_BYTES } from './connector.js';

function main(): void {
  const { values } = parseArgs({
    options: { host: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(
      `Usage: npm run connector -- [--host <function app host, default ${DEFAULT_HOST}>] [--out <dir, default connector>]`,
    );
    return;
  }
  const outDir = resolve(values.out ?? 'connector');
  const files = connectorFiles(values.host === undefined ? {} : { host: values.host });
  mkdirSync(outDir, { recursive: true });
  for (const name of CONNECTOR_FILES) {
    const text = files[name];
    const bytes = Buffer.byteLength(text);
    if (bytes >= MAX_DEFINITION_BYTES)
      throw new Error(`${name} is ${bytes} bytes; a connector definition must stay under 1 MB`);
    writeFileSync(join(outDir, name), text);
    const written = join(outDir, name);
    const shown = relative(process.cwd(), written);
    console.log(`wrote ${shown.startsWith('..') ? written : shown} (${bytes} bytes)`);
  }
}

try {
  main();
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
