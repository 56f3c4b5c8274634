/**
 * `npm run connector`: writes the Power Automate custom connector, connector/apiDefinition.swagger.json
 * and connector/apiProperties.json, generated from the contract's zod schemas (tools/connector.ts).
 * Commit the result: a test fails when the committed files differ from what this writes.
 *
 *   npm run connector                                   # connector/, host your-function-app.azurewebsites.net
 *   npm run connector -- --host contoso-referrals.azurewebsites.net --out /tmp/connector \
 *     --publisher "Contoso Ltd" --contact-email crm-team@contoso.com --privacy-policy https://contoso.com/privacy
 *
 * It refuses to write a connector that breaks a rule of `paconn validate` it can check offline
 * (connectorFindings).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  buildConnector,
  CONNECTOR_FILES,
  type ConnectorOptions,
  connectorFiles,
  connectorFindings,
  DEFAULT_HOST,
  DEFAULT_PUBLISHER,
  MAX_DEFINITION_BYTES,
} from './connector.js';

function main(): void {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      out: { type: 'string' },
      publisher: { type: 'string' },
      'contact-email': { type: 'string' },
      'privacy-policy': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      [
        'Usage: npm run connector -- [options]',
        `  --host <function app host>    default ${DEFAULT_HOST}`,
        '  --out <dir>                   default connector',
        `  --publisher <organisation>    publisher and contact name, default "${DEFAULT_PUBLISHER}"`,
        '  --contact-email <address>     the contact email, default none',
        '  --privacy-policy <https URL>  default the website, https://<host>/api/openapi.json',
      ].join('\n'),
    );
    return;
  }
  const outDir = resolve(values.out ?? 'connector');
  const options: ConnectorOptions = {
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(values.publisher === undefined ? {} : { publisher: values.publisher }),
    ...(values['contact-email'] === undefined ? {} : { contactEmail: values['contact-email'] }),
    ...(values['privacy-policy'] === undefined ? {} : { privacyPolicy: values['privacy-policy'] }),
  };
  const findings = connectorFindings(buildConnector(options));
  if (findings.length > 0) throw new Error(`the connector breaks paconn validate's rules:\n${findings.join('\n')}`);
  const files = connectorFiles(options);
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
