/**
 * The infrastructure templates (infra/, azure.yaml), checked without the Bicep CLI or Azure:
 *
 * - every .bicep file parses with the tree-sitter Bicep grammar (syntax only: no types, no resource schemas);
 * - every parameter has a @description and a row in docs/deploy.md; every module call passes parameters its
 *   module declares, all it requires, of the right type and within its @allowed/@minLength/... limits;
 * - main.parameters.json and azure.yaml parse and agree with the templates, with azd's remote-build rule and with
 *   how azd packages a Node service (a prepackage hook stages the package where no script empties it);
 * - the app settings, evaluated from the templates for each authentication mode, are settings the app validates
 *   (CONFIGURATION_VARIABLES) or the Functions host reads (HOST_OWNED below), none that Flex Consumption
 *   deprecates, and `parseConfig` accepts them: the deployed app starts configured;
 * - the security settings and the role assignments (ids, scopes, conditions) are the documented ones.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CONFIGURATION_VARIABLES, parseConfig } from '../../shared/config.js';
import { DEFAULT_OUT_DIR } from '../../tools/package.js';
import {
  allResources,
  type BicepFile,
  descendantsOfType,
  evaluate,
  moduleCall,
  objectKeys,
  objectProperty,
  parseBicep,
  propertyPath,
  readBicepFile,
  readDeclarations,
  type Scope,
  syntaxErrors,
  type Value,
} from '../support/bicep.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const infra = join(root, 'infra');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/**
 * App settings the Functions host reads and the app does not (so they are not in CONFIGURATION_VARIABLES).
 * Any other setting the templates set must be one the app validates.
 */
const HOST_OWNED: Record<string, string> = {
  AzureWebJobsStorage__credential:
    'Functions host: its storage connection is identity-based (`managedidentity`), with AzureWebJobsStorage__clientId',
  AzureWebJobsStorage__blobServiceUri:
    'Functions host: blob endpoint of its storage (function keys, leases); the app uses the table and queue endpoints',
  AzureWebJobsStorage__accountName:
    'Functions host: the account name beside the service URIs, which avoids a documented start-up race on Flex Consumption (Azure/azure-functions-host#11787)',
};

/**
 * Settings the templates must never set: Flex Consumption deprecates them (runtime and package live in
 * functionAppConfig; learn.microsoft.com, "App settings reference for Azure Functions", Flex Consumption plan
 * deprecations), or they would carry a key or connection string although shared keys and local auth are off.
 */
const FORBIDDEN_SETTINGS = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_EXTENSION_VERSION',
  'FUNCTIONS_WORKER_RUNTIME_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_CONTENTSHARE',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
  'WEBSITE_NODE_DEFAULT_VERSION',
  'WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT',
  'WEBSITE_TIME_ZONE',
  'TZ',
  'SCM_DO_BUILD_DURING_DEPLOYMENT',
  'ENABLE_ORYX_BUILD',
  'AzureWebJobsStorage',
  'APPINSIGHTS_INSTRUMENTATIONKEY',
];

/** Built-in role definition ids (docs/azure-functions.md#built-in-roles). */
const ROLE_IDS = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
};
/**
 * Roles the app must not get: Owner, Contributor, and Storage Queue Data Reader and Message Processor, which Microsoft
 * lists for a queue trigger but which cannot add a message (the app's send, the host's move to the poison queue).
 */
const UNWANTED_ROLE_IDS = [
  '19e7f393-937e-4f77-808e-94535e297925',
  '8a0f0c08-91a1-4084-bc3d-661d67233fed',
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  'b24988ac-6180-42a0-ab88-20f7382dd24c',
];

// What Azure returns after the deployment, in the shapes it returns them (endpoints and vault URI end with `/`).
const CLIENT_ID = '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const PRINCIPAL_ID = '0b5c9d7e-1f2a-4b3c-8d4e-5f6a7b8c9d0e';
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const DEPLOYER_ID = '3c2b1a09-8f7e-4d6c-9b5a-493827160514';
const IDENTITY_ID =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-api-abcdefghijklm';
const PLACEHOLDERS: Record<string, Value> = {
  'identity.outputs.id': IDENTITY_ID,
  'identity.outputs.clientId': CLIENT_ID,
  'identity.outputs.principalId': PRINCIPAL_ID,
  'storage.outputs.name': 'stabcdefghijklm',
  'storage.outputs.blobEndpoint': 'https://stabcdefghijklm.blob.core.windows.net/',
  'storage.outputs.tableEndpoint': 'https://stabcdefghijklm.table.core.windows.net/',
  'storage.outputs.queueEndpoint': 'https://stabcdefghijklm.queue.core.windows.net/',
  'monitoring.outputs.applicationInsightsName': 'appi-abcdefghijklm',
  'monitoring.outputs.logAnalyticsId':
    '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-prod/providers/Microsoft.OperationalInsights/workspaces/log-abcdefghijklm',
  'keyVault.outputs.name': 'kv-abcdefghijklm',
  'keyVault.outputs.uri': 'https://kv-abcdefghijklm.vault.azure.net/',
  'applicationInsights.properties.ConnectionString':
    'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/;ApplicationId=11111111-1111-1111-1111-111111111111',
};
const PLATFORM = {
  uniqueString: 'abcdefghijklm',
  tenantId: TENANT_ID,
  subscriptionId: '00000000-0000-0000-0000-000000000000',
  resourceGroup: 'rg-prod',
};
/** What the platform puts in place of a Key Vault reference: the secret (a valid Standard Webhooks one). */
const RESOLVED_WEBHOOK_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

let main: BicepFile;
let modules: Record<string, BicepFile>;
const files: BicepFile[] = [];

beforeAll(async () => {
  main = await readBicepFile(join(infra, 'main.bicep'));
  files.push(main);
  modules = {};
  for (const [symbol, module] of main.modules) {
    const file = await readBicepFile(join(infra, module.path));
    modules[symbol] = file;
    files.push(file);
  }
  for (const name of readdirSync(join(infra, 'app'))) {
    const path = join(infra, 'app', name);
    if (name.endsWith('.bicep') && !files.some((f) => f.path === path)) files.push(await readBicepFile(path));
  }
});

function moduleFile(symbol: string): BicepFile {
  const file = modules[symbol];
  if (!file) throw new Error(`main.bicep has no module ${symbol}`);
  return file;
}

/** azd's substitution of `${VAR}` and `${VAR=default}` in main.parameters.json from the environment's values. */
function substitute(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=([^}]*))?\}/g, (_, name: string, fallback?: string) =>
    name in env ? (env[name] as string) : (fallback ?? ''),
  );
}

/** The main.bicep parameters azd passes for an environment: main.parameters.json with the env substituted. */
function mainParameters(env: Record<string, string>, overrides: Record<string, Value> = {}): Record<string, Value> {
  const file = JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, { value: Value }> };
  const params: Record<string, Value> = {};
  for (const [name, { value }] of Object.entries(file.parameters)) {
    params[name] = typeof value === 'string' ? substitute(value, env) : value;
  }
  return { ...params, ...overrides };
}

const AZD_ENV = {
  AZURE_ENV_NAME: 'prod',
  AZURE_LOCATION: 'westeurope',
  AZURE_PRINCIPAL_ID: DEPLOYER_ID,
  AZURE_SUBSCRIPTION_ID: PLATFORM.subscriptionId,
};
const APP_REGISTRATION = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';

interface Deployment {
  mainScope: Scope;
  /** Parameters each module receives, by module symbol. */
  moduleParams: Record<string, Record<string, Value>>;
  problems: string[];
  /** The function app's app settings. */
  settings: Record<string, string>;
}

/** Evaluates main.bicep for an azd environment down to the values each module receives and the app settings. */
function deploy(env: Record<string, string>, overrides: Record<string, Value> = {}, mainFile = main): Deployment {
  const mainScope: Scope = {
    file: mainFile,
    params: mainParameters(env, overrides),
    placeholders: PLACEHOLDERS,
    moduleFiles: modules,
    platform: PLATFORM,
  };
  const problems: string[] = [];
  for (const [name, param] of mainFile.params) {
    if (!(name in mainScope.params) && !param.defaultValue) problems.push(`main.bicep: ${name} has no value`);
  }
  const moduleParams: Record<string, Record<string, Value>> = {};
  for (const symbol of mainFile.modules.keys()) {
    const call = moduleCall(mainScope, symbol, moduleFile(symbol));
    moduleParams[symbol] = call.params;
    problems.push(...call.problems.map((p) => `module ${symbol}: ${p}`));
  }
  // The settings only mean something for a module call that is complete.
  const apiComplete = !problems.some((p) => p.startsWith('module api: '));
  const settings = apiComplete ? appSettings(moduleFile('api'), moduleParams.api ?? {}) : {};
  return { mainScope, moduleParams, problems, settings };
}

/** The object the `appsettings` config resource of api.bicep sets, evaluated with the module's parameters. */
function appSettings(api: BicepFile, params: Record<string, Value>): Record<string, string> {
  const config = allResources(api).filter(
    (r) =>
      r.typeAndVersion.startsWith('Microsoft.Web/sites/config@') &&
      objectProperty(r.body, 'name')?.text === "'appsettings'",
  );
  expect(config, 'api.bicep sets app settings through exactly one sites/config appsettings resource').toHaveLength(1);
  const properties = config[0] && objectProperty(config[0].body, 'properties');
  if (!properties) throw new Error('appsettings resource without properties');
  const value = evaluate(properties, { file: api, params, placeholders: PLACEHOLDERS, platform: PLATFORM });
  for (const [name, setting] of Object.entries(value as Record<string, Value>)) {
    if (typeof setting !== 'string') throw new Error(`app setting ${name} is ${JSON.stringify(setting)}, not a string`);
  }
  return value as Record<string, string>;
}

/** App settings as the app sees them: Key Vault references are resolved by the platform before the app starts. */
function asTheAppSeesThem(settings: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(settings).map(([name, value]) => [
      name,
      /^@Microsoft\.KeyVault\(/.test(value) ? RESOLVED_WEBHOOK_SECRET : value,
    ]),
  );
}

/** Names neither the app validates nor the host owns, and names the templates must not set. */
function unknownSettings(settings: Record<string, string>): string[] {
  return Object.keys(settings).filter((name) => !CONFIGURATION_VARIABLES.includes(name) && !(name in HOST_OWNED));
}

describe('syntax', () => {
  it('every .bicep file under infra/ parses with zero ERROR or MISSING nodes', () => {
    expect(files.map((f) => f.path.slice(infra.length + 1)).sort()).toEqual(
      ['main.bicep', ...readdirSync(join(infra, 'app')).map((n) => `app/${n}`)]
        .filter((p) => p.endsWith('.bicep'))
        .sort(),
    );
    for (const file of files) expect(syntaxErrors(file.root), file.path).toEqual([]);
  });

  it('the syntax check does find errors (an unclosed object, a stray token)', async () => {
    expect(
      syntaxErrors(await parseBicep("param a string\nresource r 'A/b@2020-01-01' = {\n  name: 'x'\n")),
    ).not.toEqual([]);
    expect(syntaxErrors(await parseBicep('var x = (1 +\n'))).not.toEqual([]);
    expect(syntaxErrors(await parseBicep("var x = { a: 'b' c }\n"))).not.toEqual([]);
  });

  it('every module path exists and every module of main.bicep is in infra/app', () => {
    for (const file of files) {
      for (const module of file.modules.values()) {
        expect(() => readFileSync(join(file.path, '..', module.path)), `${file.path}: ${module.path}`).not.toThrow();
        expect(module.path, 'no registry modules: everything is reviewable here').toMatch(/^\.\/app\/[a-z]+\.bicep$/);
      }
    }
  });

  it('every resource names a GA API version (diagnostic settings have only preview versions: the one AVM uses)', () => {
    for (const file of files) {
      for (const resource of allResources(file)) {
        if (resource.typeAndVersion.startsWith('Microsoft.Insights/diagnosticSettings@')) {
          expect(resource.typeAndVersion).toBe('Microsoft.Insights/diagnosticSettings@2021-05-01-preview');
          continue;
        }
        expect(resource.typeAndVersion, `${file.path}: ${resource.name}`).toMatch(
          /^Microsoft\.[A-Za-z]+\/[A-Za-z/]+@\d{4}-\d{2}-\d{2}$/,
        );
      }
    }
  });
});

describe('evaluator', () => {
  it('binds member access and indexing tightest, although the grammar attaches them to the whole expression', async () => {
    const source = [
      "param o object = { k: 'v', n: { m: 2 }, l: [1, 2] }",
      "var a = 'v' == o.k",
      "var b = true ? 'x' : o.k",
      "var c = o.k != 'v' || o.n.m == 2 ? 'yes' : o.k",
      'var d = !empty(o.k) && o.l[1] == 2',
      "var e = (o.k == 'w') ? 1 : o.n.m",
      '',
    ].join('\n');
    const file = readDeclarations('snippet.bicep', source, await parseBicep(source));
    expect(syntaxErrors(file.root)).toEqual([]);
    const value = (name: string) =>
      evaluate(file.vars.get(name) ?? file.root, { file, params: {}, placeholders: {}, platform: PLATFORM });
    expect([value('a'), value('b'), value('c'), value('d'), value('e')]).toEqual([true, 'x', 'yes', true, 2]);
  });
});

describe('parameters', () => {
  it('every parameter of every file has a @description', () => {
    for (const file of files) {
      for (const param of file.params.values()) {
        const description = param.decorators.get('description')?.[0];
        expect(description, `${file.path}: ${param.name}`).toBeDefined();
        if (description)
          expect(String(evaluate(description, { file, params: {}, placeholders: {} })).length).toBeGreaterThan(10);
      }
    }
  });

  it('docs/deploy.md has a row for every parameter of main.bicep, and none for a parameter that does not exist', () => {
    const doc = read('docs/deploy.md');
    const section = doc.slice(doc.indexOf('\n## Parameters'), doc.indexOf('\n## ', doc.indexOf('\n## Parameters') + 1));
    const documented = [...section.matchAll(/^\| `([A-Za-z]+)` +\|/gm)].map((m) => m[1]);
    expect(new Set(documented)).toEqual(new Set(main.params.keys()));
  });

  it('main.parameters.json is JSON that sets only parameters main.bicep declares, with azd variables or typed literals', () => {
    const file = JSON.parse(read('infra/main.parameters.json')) as {
      $schema: string;
      parameters: Record<string, { value: unknown }>;
    };
    expect(file.$schema).toMatch(/deploymentParameters\.json#$/);
    for (const [name, { value }] of Object.entries(file.parameters)) {
      const param = main.params.get(name);
      expect(param, `main.parameters.json sets ${name}`).toBeDefined();
      if (typeof value === 'string') {
        expect(param?.type, `${name}: azd substitutes text, so only string parameters take \${...}`).toBe('string');
        expect(value).toMatch(/^\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}$/);
      } else {
        expect(typeof value, name).toBe({ int: 'number', bool: 'boolean' }[param?.type ?? ''] ?? 'object');
      }
    }
    for (const [name, param] of main.params) {
      if (!param.defaultValue) expect(file.parameters, `required parameter ${name}`).toHaveProperty(name);
    }
    expect(file.parameters.environmentName?.value).toBe(`\${AZURE_ENV_NAME}`);
    expect(file.parameters.location?.value).toBe(`\${AZURE_LOCATION}`);
    expect(file.parameters.principalId?.value).toBe(`\${AZURE_PRINCIPAL_ID}`);
  });

  it('every abbreviation main.bicep uses is in abbreviations.json', () => {
    const abbreviations = JSON.parse(read('infra/abbreviations.json')) as Record<string, string>;
    const used = [...main.source.matchAll(/\babbrs\.([A-Za-z]+)/g)].map((m) => m[1] as string);
    expect(used.length).toBeGreaterThan(0);
    for (const key of used) expect(abbreviations, key).toHaveProperty(key);
  });

  it('location is limited to Flex Consumption regions', () => {
    const allowed = evaluate(main.params.get('location')?.decorators.get('allowed')?.[0] ?? main.root, {
      file: main,
      params: {},
      placeholders: {},
    });
    expect(allowed).toEqual(expect.arrayContaining(['westeurope', 'eastus', 'swedencentral']));
    // No canary (EUAP) region: most subscriptions cannot deploy there.
    expect((allowed as string[]).filter((region) => /euap$/.test(region))).toEqual([]);
  });

  it('maximumInstanceCount: 1 to 1000 as Flex Consumption allows, 10 by default (Partner Center publishes no rate limit)', () => {
    for (const file of [main, moduleFile('api')]) {
      const param = file.params.get('maximumInstanceCount');
      expect(literal(param?.decorators.get('minValue')?.[0]), file.path).toBe(1);
      expect(literal(param?.decorators.get('maxValue')?.[0]), file.path).toBe(1000);
      expect(literal(param?.defaultValue), file.path).toBe(10);
    }
    const file = JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, { value: unknown }> };
    expect(file.parameters.maximumInstanceCount?.value).toBe(10);
    expect(deploy(AZD_ENV).moduleParams.api?.maximumInstanceCount).toBe(10);
    expect(deploy(AZD_ENV, { maximumInstanceCount: 1 }).problems).toEqual([]);
    expect(deploy(AZD_ENV, { maximumInstanceCount: 1001 }).problems).toEqual([
      'module api: maximumInstanceCount: above 1000',
    ]);
  });

  it('every module call passes declared parameters, all required ones, typed and within limits', () => {
    for (const env of [AZD_ENV, { ...AZD_ENV, PARTNER_CENTER_AUTH: 'managed-identity' }]) {
      expect(deploy(env).problems).toEqual([]);
    }
  });

  it('the module-call check catches a misspelled parameter and a value outside @allowed', async () => {
    const source = main.source.replace(
      'identityClientId: identity.outputs.clientId',
      'identityClientID: identity.outputs.clientId',
    );
    expect(source).not.toBe(main.source);
    const broken = await readBicepFile(main.path, source);
    expect(deploy(AZD_ENV, {}, broken).problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('identityClientID: '),
        expect.stringContaining('identityClientId: required'),
      ]),
    );
    expect(deploy({ ...AZD_ENV, PARTNER_CENTER_AUTH: 'app+user' }).problems).toEqual(
      expect.arrayContaining([expect.stringContaining('partnerCenterAuth: "app+user" is not one of')]),
    );
  });

  it('resource names fit their limits (storage account and vault: at most 24 characters)', () => {
    const { moduleParams } = deploy(AZD_ENV);
    expect(moduleParams.storage?.name).toBe('stabcdefghijklm');
    expect(moduleParams.keyVault?.name).toBe('kv-abcdefghijklm');
    expect(moduleParams.api?.name).toBe('func-api-abcdefghijklm');
    expect(String(moduleParams.storage?.deploymentContainerName)).toMatch(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/);
  });
});

describe('azure.yaml', () => {
  const yaml = parseYaml(read('azure.yaml')) as {
    name: string;
    services: Record<
      string,
      {
        project: string;
        language: string;
        host: string;
        dist?: string;
        remoteBuild?: boolean;
        hooks?: Record<string, unknown>;
      }
    >;
  };

  it('names one function service, api, as the quickstart does, and the app carries its azd-service-name tag', () => {
    expect(yaml.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(Object.keys(yaml.services)).toEqual(['api']);
    expect(yaml.services.api).toMatchObject({ project: '.', language: 'ts', host: 'function' });
    const api = moduleFile('api');
    expect(api.params.get('serviceName')?.defaultValue?.text).toBe("'api'");
    expect(descendantsOfType(api.root, 'string').some((s) => s.text === "'azd-service-name'")).toBe(true);
  });

  it('azd packages with `npm run build`, never `npm run package`: a prepackage hook stages the package, outside what any script empties', () => {
    // This replaces an assertion that azd runs the `package` script: it runs `build` (Azure/azure-dev
    // cli/azd/pkg/project/framework_service_node.go, Package), and `build` empties dist/. The sequence itself
    // runs in test/integration/package.test.ts ("azd package, step by step as azd runs it").
    const manifest = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    const dist = yaml.services.api?.dist ?? '';
    expect(dist).toBe('out/package/app');
    expect(yaml.services.api?.hooks?.prepackage).toEqual({ run: 'npm run package' });
    expect(manifest.scripts.package, 'the package script builds and checks the folder azure.yaml deploys').toContain(
      `check-entry-points.mjs ${dist}`,
    );
    expect(join(DEFAULT_OUT_DIR, 'app'), 'tools/package.ts stages where azure.yaml points').toBe(join(root, dist));
    // No npm script empties a folder holding the staged package (`node scripts/clean.mjs <folders>`).
    for (const [name, script] of Object.entries(manifest.scripts)) {
      for (const match of script.matchAll(/scripts\/clean\.mjs((?: +[^ &|;]+)+)/g)) {
        for (const folder of (match[1] ?? '').trim().split(/ +/)) {
          const inside = relative(join(root, folder), join(root, dist));
          expect(inside === '' || !inside.startsWith('..'), `npm run ${name} empties ${folder}`).toBe(false);
        }
      }
    }
    expect(read('.gitignore').split(/\r?\n/), 'the staged package is not committed').toContain('out/');
  });

  it('deploys the staged package as built (remoteBuild: false), which azd allows only if .funcignore keeps node_modules', () => {
    expect(yaml.services.api?.remoteBuild).toBe(false);
    // Azure/azure-dev cli/azd/pkg/project/service_target_functionapp.go, resolveFunctionAppRemoteBuild:
    // "'remoteBuild: false' cannot be used when '.funcignore' excludes node_modules".
    const patterns = read('.funcignore')
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#') && !line.startsWith('!'));
    expect(patterns.filter((p) => /^\/?node_modules\/?(\*\*)?$/.test(p) || p === '*' || p === '**')).toEqual([]);
    expect(patterns, 'the templates are not deployed').toContain('infra');
    expect(patterns, 'nor the staged package, by `func azure functionapp publish` from the repository').toContain(
      'out',
    );
  });
});

describe('app settings', () => {
  it('app-user (the default): every setting is validated by the app or owned by the host, and parseConfig accepts them', () => {
    const { settings, problems } = deploy({ ...AZD_ENV, APP_REGISTRATION_CLIENT_ID: APP_REGISTRATION });
    expect(problems).toEqual([]);
    expect(unknownSettings(settings)).toEqual([]);
    expect(Object.keys(settings).filter((name) => FORBIDDEN_SETTINGS.includes(name))).toEqual([]);
    expect(settings).toMatchObject({
      PARTNER_CENTER_AUTH: 'app-user',
      PARTNER_CENTER_WRITE_METHOD: 'put',
      KEY_VAULT_URL: 'https://kv-abcdefghijklm.vault.azure.net/',
      PARTNER_TENANT_ID: TENANT_ID,
      APP_REGISTRATION_CLIENT_ID: APP_REGISTRATION,
      APP_CLIENT_AUTH: 'federated',
      REFRESH_TOKEN_SECRET_NAME: 'partner-center-refresh-token',
      AZURE_CLIENT_ID: CLIENT_ID,
      IDEMPOTENCY_STORE: 'table',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: CLIENT_ID,
      AzureWebJobsStorage__accountName: 'stabcdefghijklm',
      AzureWebJobsStorage__blobServiceUri: 'https://stabcdefghijklm.blob.core.windows.net/',
      AzureWebJobsStorage__tableServiceUri: 'https://stabcdefghijklm.table.core.windows.net/',
      AzureWebJobsStorage__queueServiceUri: 'https://stabcdefghijklm.queue.core.windows.net/',
      DEFAULT_DELIVERY: 'sync',
      ASYNC_MAX_AGE_SECONDS: '86400',
      ASYNC_RETRY_MIN_SECONDS: '30',
      ASYNC_RETRY_MAX_SECONDS: '900',
      ASYNC_POLL_SECONDS: '5',
      ASYNC_QUEUE_NAME: 'referral-updates',
      APPLICATIONINSIGHTS_CONNECTION_STRING: PLACEHOLDERS['applicationInsights.properties.ConnectionString'],
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: `ClientId=${CLIENT_ID};Authorization=AAD`,
      UPSTREAM_BUDGET_MS: '60000',
      UPSTREAM_REQUEST_TIMEOUT_MS: '15000',
    });
    expect(settings).not.toHaveProperty('WEBHOOK_SECRETS');
    expect(settings).not.toHaveProperty('APP_CLIENT_SECRET_NAME');
    expect(settings).not.toHaveProperty('PARTNER_CENTER_BASE_URL');

    const result = parseConfig(asTheAppSeesThem(settings));
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.auth).toMatchObject({
      mode: 'app-user',
      keyVaultUrl: 'https://kv-abcdefghijklm.vault.azure.net',
      tenantId: TENANT_ID,
      appClientId: APP_REGISTRATION,
      clientAuth: 'federated',
    });
    expect(result.config.identity.clientId).toBe(CLIENT_ID);
    expect(result.config.idempotency).toMatchObject({
      store: 'table',
      connection: { tableServiceUri: 'https://stabcdefghijklm.table.core.windows.net', clientId: CLIENT_ID },
    });
    expect(result.config.partnerCenter.origin).toBe('https://api.partner.microsoft.com');
    expect(result.config.delivery).toEqual({
      default: 'sync',
      maxAgeSeconds: 86_400,
      retryMinSeconds: 30,
      retryMaxSeconds: 900,
      pollSeconds: 5,
      queueName: 'referral-updates',
      poisonQueueName: 'referral-updates-poison',
      queue: { queueServiceUri: 'https://stabcdefghijklm.queue.core.windows.net', clientId: CLIENT_ID },
    });
  });

  it('asynchronous delivery: DEFAULT_DELIVERY from azd, the queue the storage module creates, the app accepts them', () => {
    const deployment = deploy(
      { ...AZD_ENV, APP_REGISTRATION_CLIENT_ID: APP_REGISTRATION, DEFAULT_DELIVERY: 'async' },
      {
        asyncQueueName: 'updates-prod',
        asyncMaxAgeSeconds: 3600,
      },
    );
    expect(deployment.problems).toEqual([]);
    expect(deployment.moduleParams.storage?.queueName).toBe('updates-prod');
    expect(deployment.settings).toMatchObject({
      DEFAULT_DELIVERY: 'async',
      ASYNC_QUEUE_NAME: 'updates-prod',
      ASYNC_MAX_AGE_SECONDS: '3600',
    });
    const result = parseConfig(asTheAppSeesThem(deployment.settings));
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.delivery).toMatchObject({ default: 'async', queueName: 'updates-prod', maxAgeSeconds: 3600 });
    expect(deploy({ ...AZD_ENV, DEFAULT_DELIVERY: 'later' }).problems).toEqual(
      expect.arrayContaining([expect.stringContaining('defaultDelivery: "later" is not one of')]),
    );
    expect(deploy(AZD_ENV, { asyncQueueName: 'q'.repeat(57) }).problems).toEqual(
      expect.arrayContaining([expect.stringContaining('asyncQueueName')]),
    );
  });

  it('PARTNER_CENTER_WRITE_METHOD from azd passes through to the app, which accepts it; another value is refused', () => {
    const deployment = deploy({
      ...AZD_ENV,
      APP_REGISTRATION_CLIENT_ID: APP_REGISTRATION,
      PARTNER_CENTER_WRITE_METHOD: 'patch',
    });
    expect(deployment.problems).toEqual([]);
    expect(deployment.settings.PARTNER_CENTER_WRITE_METHOD).toBe('patch');
    const result = parseConfig(asTheAppSeesThem(deployment.settings));
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.partnerCenter.writeMethod).toBe('patch');
    expect(deploy({ ...AZD_ENV, PARTNER_CENTER_WRITE_METHOD: 'merge' }).problems).toEqual(
      expect.arrayContaining([expect.stringContaining('partnerCenterWriteMethod: "merge" is not one of')]),
    );
  });

  it('STAGE_MAP from azd: a preset or a JSON object passed through as it is, unset when empty; the app validates it', () => {
    const base = { ...AZD_ENV, APP_REGISTRATION_CLIENT_ID: APP_REGISTRATION };
    expect(deploy(base).settings).not.toHaveProperty('STAGE_MAP');
    const preset = deploy({ ...base, STAGE_MAP: 'salesforce' });
    expect(preset.problems).toEqual([]);
    expect(preset.settings.STAGE_MAP).toBe('salesforce');
    const custom = '{"Close Won": "Closed/Won", "Negotiation/Review": "Active", "Needs Analysis": null}';
    const own = deploy({ ...base, STAGE_MAP: custom });
    expect(own.settings.STAGE_MAP).toBe(custom);
    const result = parseConfig(asTheAppSeesThem(own.settings));
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.inbound.stageMap?.entries.map((e) => e.stage)).toEqual([
      'Close Won',
      'Negotiation/Review',
      'Needs Analysis',
    ]);
    // azd substitutes ${STAGE_MAP} into the text of main.parameters.json: a JSON map is set with its quotes escaped
    // (docs/stages.md#setting-stage_map), and the file then holds it as it was meant.
    const text = read('infra/main.parameters.json').replace(`\${STAGE_MAP}`, custom.replaceAll('"', '\\"'));
    expect(JSON.parse(text).parameters.stageMap.value).toBe(custom);
  });

  it('app-user without the app registration id: the app reports exactly that (health: misconfigured)', () => {
    const { settings } = deploy(AZD_ENV);
    expect(settings).not.toHaveProperty('APP_REGISTRATION_CLIENT_ID');
    expect(parseConfig(asTheAppSeesThem(settings))).toEqual({
      ok: false,
      problems: ['APP_REGISTRATION_CLIENT_ID is required when PARTNER_CENTER_AUTH=app-user'],
    });
  });

  it('app-user with a client secret in Key Vault and another partner tenant', () => {
    const { settings } = deploy({
      ...AZD_ENV,
      APP_REGISTRATION_CLIENT_ID: APP_REGISTRATION,
      APP_CLIENT_AUTH: 'key-vault-secret',
      APP_CLIENT_SECRET_NAME: 'app-client-secret',
      PARTNER_TENANT_ID: '9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a',
    });
    expect(unknownSettings(settings)).toEqual([]);
    const result = parseConfig(asTheAppSeesThem(settings));
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.auth).toMatchObject({
      clientAuth: 'key-vault-secret',
      clientSecretName: 'app-client-secret',
      tenantId: '9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a',
    });
  });

  it('managed-identity: no Secure Application Model settings, and parseConfig accepts them', () => {
    const { settings, problems } = deploy({ ...AZD_ENV, PARTNER_CENTER_AUTH: 'managed-identity' });
    expect(problems).toEqual([]);
    expect(unknownSettings(settings)).toEqual([]);
    for (const name of ['KEY_VAULT_URL', 'PARTNER_TENANT_ID', 'APP_REGISTRATION_CLIENT_ID', 'APP_CLIENT_AUTH']) {
      expect(settings).not.toHaveProperty(name);
    }
    const result = parseConfig(asTheAppSeesThem(settings));
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.auth).toEqual({ mode: 'managed-identity' });
  });

  it('webhook secrets: a Key Vault reference resolved with the app identity, read-only vault access in managed-identity mode', () => {
    const deployment = deploy({
      ...AZD_ENV,
      PARTNER_CENTER_AUTH: 'managed-identity',
      WEBHOOK_SECRETS_SECRET_NAME: 'webhook-secrets',
      PARTNER_CENTER_BASE_URL: 'https://api.partner.microsoft.com',
    });
    expect(deployment.settings.WEBHOOK_SECRETS).toBe(
      '@Microsoft.KeyVault(SecretUri=https://kv-abcdefghijklm.vault.azure.net/secrets/webhook-secrets)',
    );
    expect(deployment.moduleParams.rbac).toMatchObject({ appWritesSecrets: false, appResolvesReferences: true });
    const site = allResources(moduleFile('api')).find((r) => r.typeAndVersion.startsWith('Microsoft.Web/sites@'));
    const referenceIdentity = site && propertyPath(site.body, 'properties.keyVaultReferenceIdentity');
    expect(referenceIdentity?.text).toBe('identityId');
    const result = parseConfig(asTheAppSeesThem(deployment.settings));
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.inbound.webhookSecrets).toEqual([RESOLVED_WEBHOOK_SECRET]);
    expect(result.config.partnerCenter.origin).toBe('https://api.partner.microsoft.com');
  });

  it('the settings check does catch a setting the app does not know', async () => {
    const api = moduleFile('api');
    const source = api.source.replace('IDEMPOTENCY_STORE:', 'IDEMPOTENCY_STOR:');
    expect(source).not.toBe(api.source);
    const mutated = readDeclarations(api.path, source, await parseBicep(source));
    const { moduleParams } = deploy({ ...AZD_ENV, APP_REGISTRATION_CLIENT_ID: APP_REGISTRATION });
    expect(unknownSettings(appSettings(mutated, moduleParams.api ?? {}))).toEqual(['IDEMPOTENCY_STOR']);
  });

  it('the evaluator refuses what it cannot know rather than guessing', () => {
    const scope: Scope = {
      file: main,
      params: mainParameters(AZD_ENV),
      placeholders: {},
      moduleFiles: modules,
      platform: PLATFORM,
    };
    expect(() => moduleCall(scope, 'api', moduleFile('api'))).toThrow(/no placeholder value for identity\.outputs\./);
  });
});

describe('security settings', () => {
  const resource = (file: BicepFile, type: string) => {
    const found = allResources(file).filter((r) => r.typeAndVersion.startsWith(`${type}@`) && !r.existing);
    expect(found, `${file.path}: one ${type}`).toHaveLength(1);
    return found[0]?.body ?? file.root;
  };

  it('storage: the delivery queue and its poison queue, named from asyncQueueName', () => {
    const storage = moduleFile('storage');
    const queues = allResources(storage).filter((r) =>
      r.typeAndVersion.startsWith('Microsoft.Storage/storageAccounts/queueServices/queues@'),
    );
    const params = deploy(AZD_ENV).moduleParams.storage ?? {};
    const scope = { file: storage, params, placeholders: {}, platform: PLATFORM };
    expect(queues.map((q) => evaluate(objectProperty(q.body, 'name') ?? storage.root, scope)).sort()).toEqual([
      'referral-updates',
      'referral-updates-poison',
    ]);
  });

  it('storage: shared keys off, no public blobs, TLS 1.2, https only, private deployment container', () => {
    const storage = moduleFile('storage');
    const account = resource(storage, 'Microsoft.Storage/storageAccounts');
    expect(literal(propertyPath(account, 'properties.allowSharedKeyAccess'))).toBe(false);
    expect(literal(propertyPath(account, 'properties.allowBlobPublicAccess'))).toBe(false);
    expect(literal(propertyPath(account, 'properties.minimumTlsVersion'))).toBe('TLS1_2');
    expect(literal(propertyPath(account, 'properties.supportsHttpsTrafficOnly'))).toBe(true);
    expect(literal(propertyPath(account, 'properties.defaultToOAuthAuthentication'))).toBe(true);
    const container = resource(storage, 'Microsoft.Storage/storageAccounts/blobServices/containers');
    expect(literal(propertyPath(container, 'properties.publicAccess'))).toBe('None');
  });

  it('Application Insights: Entra ID ingestion only, workspace-based', () => {
    const component = resource(moduleFile('monitoring'), 'Microsoft.Insights/components');
    expect(literal(propertyPath(component, 'properties.DisableLocalAuth'))).toBe(true);
    expect(propertyPath(component, 'properties.WorkspaceResourceId')?.text).toBe('logAnalytics.id');
  });

  it('Key Vault: RBAC, soft delete, purge protection by default, public access a parameter', () => {
    const keyVault = moduleFile('keyVault');
    const vault = resource(keyVault, 'Microsoft.KeyVault/vaults');
    expect(literal(propertyPath(vault, 'properties.enableRbacAuthorization'))).toBe(true);
    expect(literal(propertyPath(vault, 'properties.enableSoftDelete'))).toBe(true);
    expect(propertyPath(vault, 'properties.publicNetworkAccess')?.text).toBe('publicNetworkAccess');
    expect(literal(propertyPath(vault, 'properties.enabledForTemplateDeployment'))).toBe(false);
    expect(deploy(AZD_ENV).moduleParams.keyVault).toMatchObject({
      enablePurgeProtection: true,
      publicNetworkAccess: 'Enabled',
    });
  });

  it('Key Vault: createMode default, or recover through KEY_VAULT_CREATE_MODE, wired to the vault (a soft-deleted, purge-protected name after `azd down`)', () => {
    const param = main.params.get('keyVaultCreateMode');
    expect(param?.defaultValue?.text).toBe("'default'");
    expect(literal(param?.decorators.get('allowed')?.[0])).toEqual(['default', 'recover']);
    const file = JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, { value: unknown }> };
    expect(file.parameters.keyVaultCreateMode?.value).toBe(`\${KEY_VAULT_CREATE_MODE=default}`);
    expect(deploy(AZD_ENV).moduleParams.keyVault?.createMode).toBe('default');
    const recovering = deploy({ ...AZD_ENV, KEY_VAULT_CREATE_MODE: 'recover' });
    expect(recovering.problems).toEqual([]);
    expect(recovering.moduleParams.keyVault?.createMode).toBe('recover');
    expect(deploy({ ...AZD_ENV, KEY_VAULT_CREATE_MODE: 'purge' }).problems).toEqual(
      expect.arrayContaining([expect.stringContaining('module keyVault: createMode: "purge" is not one of')]),
    );
    const vault = resource(moduleFile('keyVault'), 'Microsoft.KeyVault/vaults');
    expect(propertyPath(vault, 'properties.createMode')?.text).toBe('createMode');
  });

  it('function app: Flex Consumption, Node 22, package in blob storage read with the user-assigned identity, https only, no basic-auth publishing', () => {
    const api = moduleFile('api');
    const plan = resource(api, 'Microsoft.Web/serverfarms');
    expect(literal(propertyPath(plan, 'sku'))).toEqual({ tier: 'FlexConsumption', name: 'FC1' });
    expect(literal(propertyPath(plan, 'properties.reserved'))).toBe(true);
    const site = resource(api, 'Microsoft.Web/sites');
    expect(literal(propertyPath(site, 'kind'))).toBe('functionapp,linux');
    expect(literal(propertyPath(site, 'properties.httpsOnly'))).toBe(true);
    expect(literal(propertyPath(site, 'properties.functionAppConfig.runtime'))).toEqual({
      name: 'node',
      version: '22',
    });
    expect(literal(propertyPath(site, 'properties.functionAppConfig.deployment.storage.type'))).toBe('blobContainer');
    expect(literal(propertyPath(site, 'properties.functionAppConfig.deployment.storage.authentication.type'))).toBe(
      'UserAssignedIdentity',
    );
    expect(
      propertyPath(
        site,
        'properties.functionAppConfig.deployment.storage.authentication.userAssignedIdentityResourceId',
      )?.text,
    ).toBe('identityId');
    expect(propertyPath(site, 'properties.functionAppConfig.scaleAndConcurrency.instanceMemoryMB')?.text).toBe(
      'instanceMemoryMB',
    );
    expect(propertyPath(site, 'properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount')?.text).toBe(
      'maximumInstanceCount',
    );
    expect(literal(propertyPath(site, 'identity.type'))).toBe('UserAssigned');
    expect(objectKeys(propertyPath(site, 'identity.userAssignedIdentities') ?? site)).toEqual([`\${identityId}`]);
    expect(
      propertyPath(site, 'properties.siteConfig.appSettings'),
      'app settings only in the config resource',
    ).toBeUndefined();
    const policies = allResources(api).filter((r) =>
      r.typeAndVersion.startsWith('Microsoft.Web/sites/basicPublishingCredentialsPolicies@'),
    );
    expect(
      policies
        .map((p) => [literal(objectProperty(p.body, 'name')), literal(propertyPath(p.body, 'properties.allow'))])
        .sort(),
    ).toEqual([
      ['ftp', false],
      ['scm', false],
    ]);
    // `location` on both: reported to fail validation without it (BCP187 is silenced on the line before).
    for (const policy of policies) {
      expect(objectProperty(policy.body, 'location')?.text, policy.name).toBe('location');
      expect(policy.body.text, policy.name).toMatch(/#disable-next-line BCP187\s+location: location/);
    }
  });

  it('nothing in infra/ holds a key, a connection string or a listKeys() call', () => {
    for (const file of files) {
      expect(file.source, file.path).not.toMatch(/listKeys|AccountKey=|listConnectionStrings|InstrumentationKey=/);
      expect(file.source, file.path).not.toMatch(/@secure\(\)/);
    }
  });
});

describe('role assignments', () => {
  const rbac = () => moduleFile('rbac');
  const assignments = () =>
    allResources(rbac()).filter((r) => r.typeAndVersion.startsWith('Microsoft.Authorization/roleAssignments@'));

  it('uses the documented built-in role ids and no broader or unneeded role anywhere', () => {
    const roles = evaluate(rbac().vars.get('roles') ?? rbac().root, { file: rbac(), params: {}, placeholders: {} });
    expect(roles).toEqual(ROLE_IDS);
    for (const file of files) for (const id of UNWANTED_ROLE_IDS) expect(file.source, file.path).not.toContain(id);
    for (const assignment of assignments()) {
      const definition = propertyPath(assignment.body, 'properties.roleDefinitionId')?.text ?? '';
      expect(definition).toMatch(
        /^subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions', (roles\.[A-Za-z]+|secretWriterRoleId)\)$/,
      );
    }
  });

  it('each assignment is scoped to one resource (storage account, component or vault), never the group or subscription', () => {
    const scoped = new Map<string, string>();
    for (const assignment of assignments()) {
      const scope = objectProperty(assignment.body, 'scope')?.text ?? '';
      const target = rbac().resources.get(scope);
      expect(target?.existing, `${assignment.name} scope ${scope}`).toBe(true);
      scoped.set(assignment.name, target?.typeAndVersion.split('@')[0] ?? '');
    }
    expect(Object.fromEntries(scoped)).toEqual({
      blobOwner: 'Microsoft.Storage/storageAccounts',
      tableContributor: 'Microsoft.Storage/storageAccounts',
      queueContributor: 'Microsoft.Storage/storageAccounts',
      metricsPublisher: 'Microsoft.Insights/components',
      appSecretWriter: 'Microsoft.KeyVault/vaults',
      appReferenceReader: 'Microsoft.KeyVault/vaults',
      deployerKeyVaultRole: 'Microsoft.KeyVault/vaults',
    });
    for (const name of [
      'blobOwner',
      'tableContributor',
      'queueContributor',
      'metricsPublisher',
      'appSecretWriter',
      'appReferenceReader',
    ]) {
      const assignment = assignments().find((a) => a.name === name);
      expect(assignment && literal(propertyPath(assignment.body, 'properties.principalType'))).toBe('ServicePrincipal');
      expect(assignment && propertyPath(assignment.body, 'properties.principalId')?.text).toBe('identityPrincipalId');
    }
  });

  // Replaces "Secrets Officer for app-user": the app needs secret get and set only (docs/deploy.md#roles).
  it('Key Vault, app-user: a custom role with exactly secret get and set, assignable in the group only, assigned on the vault', () => {
    const definitions = allResources(rbac()).filter((r) =>
      r.typeAndVersion.startsWith('Microsoft.Authorization/roleDefinitions@'),
    );
    expect(definitions.map((d) => d.name)).toEqual(['secretGetSet']);
    const definition = definitions[0];
    if (!definition) throw new Error('no role definition');
    const scope = (params: Record<string, Value>) => ({
      file: rbac(),
      params: { secretWriterRole: 'custom', ...params },
      placeholders: {},
      platform: PLATFORM,
    });
    const properties = evaluate(objectProperty(definition.body, 'properties') ?? rbac().root, scope({}));
    expect(properties).toMatchObject({
      type: 'CustomRole',
      permissions: [
        {
          actions: [],
          notActions: [],
          dataActions: [
            'Microsoft.KeyVault/vaults/secrets/getSecret/action',
            'Microsoft.KeyVault/vaults/secrets/setSecret/action',
          ],
          notDataActions: [],
        },
      ],
      assignableScopes: [`/subscriptions/${PLATFORM.subscriptionId}/resourceGroups/rg-prod`],
    });
    expect((properties as { roleName: string }).roleName).toContain('rg-prod');
    expect(definition.condition && evaluate(definition.condition, scope({ appWritesSecrets: false }))).toBe(false);
    expect(definition.condition && evaluate(definition.condition, scope({ appWritesSecrets: true }))).toBe(true);

    // The app's assignment names that definition by default, Key Vault Secrets Officer only when asked (builtin).
    const writerRole = (params: Record<string, Value>) =>
      evaluate(rbac().vars.get('secretWriterRoleId') ?? rbac().root, scope({ appWritesSecrets: true, ...params }));
    expect(writerRole({})).toBe(evaluate(objectProperty(definition.body, 'name') ?? rbac().root, scope({})));
    expect(writerRole({})).not.toBe(ROLE_IDS.keyVaultSecretsOfficer);
    expect(writerRole({ secretWriterRole: 'builtin' })).toBe(ROLE_IDS.keyVaultSecretsOfficer);
    const writer = assignments().find((a) => a.name === 'appSecretWriter');
    expect(writer?.condition?.text).toBe('(appWritesSecrets)');
    expect(objectProperty(writer?.body ?? rbac().root, 'dependsOn')?.text.replace(/\s+/g, ' ')).toBe(
      '[ secretGetSet ]',
    );

    // Who gets what, per mode.
    const rbacParams = (env: Record<string, string>) => deploy(env).moduleParams.rbac;
    expect(rbacParams(AZD_ENV)).toMatchObject({
      appWritesSecrets: true,
      secretWriterRole: 'custom',
      appResolvesReferences: false,
    });
    expect(rbacParams({ ...AZD_ENV, KEY_VAULT_SECRET_WRITER_ROLE: 'builtin' })?.secretWriterRole).toBe('builtin');
    expect(rbacParams({ ...AZD_ENV, WEBHOOK_SECRETS_SECRET_NAME: 'webhook-secrets' })).toMatchObject({
      appWritesSecrets: true,
      appResolvesReferences: true,
    });
    expect(rbacParams({ ...AZD_ENV, PARTNER_CENTER_AUTH: 'managed-identity' })).toMatchObject({
      appWritesSecrets: false,
      appResolvesReferences: false,
    });
    // A Key Vault reference is read with Key Vault Secrets User, as Microsoft documents for references.
    const reader = assignments().find((a) => a.name === 'appReferenceReader');
    expect(reader?.condition?.text).toBe('(appResolvesReferences)');
    expect(propertyPath(reader?.body ?? rbac().root, 'properties.roleDefinitionId')?.text).toContain(
      'roles.keyVaultSecretsUser',
    );
  });

  it('the deployer gets Key Vault Secrets Officer when known, a person by default, a pipeline only when asked', () => {
    const deployer = (env: Record<string, string>) => deploy(env).moduleParams.rbac?.deployerPrincipalId;
    expect(deployer(AZD_ENV)).toBe(DEPLOYER_ID);
    expect(deployer({ ...AZD_ENV, AZURE_PRINCIPAL_TYPE: 'ServicePrincipal' })).toBe('');
    expect(deployer({ ...AZD_ENV, AZURE_PRINCIPAL_TYPE: 'ServicePrincipal', DEPLOYER_KEY_VAULT_ACCESS: 'on' })).toBe(
      DEPLOYER_ID,
    );
    expect(deployer({ ...AZD_ENV, DEPLOYER_KEY_VAULT_ACCESS: 'off' })).toBe('');
    expect(deployer({ ...AZD_ENV, AZURE_PRINCIPAL_ID: '' })).toBe('');
    const condition = assignments().find((a) => a.name === 'deployerKeyVaultRole')?.condition;
    expect(
      condition && evaluate(condition, { file: rbac(), params: { deployerPrincipalId: '' }, placeholders: {} }),
    ).toBe(false);
  });

  it('Key Vault audit: every secret read and write goes to the Log Analytics workspace (AuditEvent)', () => {
    const keyVault = moduleFile('keyVault');
    const settings = allResources(keyVault).filter((r) =>
      r.typeAndVersion.startsWith('Microsoft.Insights/diagnosticSettings@'),
    );
    expect(settings).toHaveLength(1);
    const audit = settings[0];
    if (!audit) throw new Error('no diagnostic setting');
    expect(objectProperty(audit.body, 'scope')?.text).toBe('vault');
    expect(audit.condition).toBeUndefined();
    expect(propertyPath(audit.body, 'properties.workspaceId')?.text).toBe('logAnalyticsWorkspaceId');
    expect(literal(propertyPath(audit.body, 'properties.logs'))).toEqual([{ category: 'AuditEvent', enabled: true }]);
    expect(deploy(AZD_ENV).moduleParams.keyVault?.logAnalyticsWorkspaceId).toBe(
      PLACEHOLDERS['monitoring.outputs.logAnalyticsId'],
    );
  });

  it('the app is created after its roles (the host reads its storage when it first starts)', () => {
    const dependsOn = objectProperty(main.modules.get('api')?.body ?? main.root, 'dependsOn');
    expect(dependsOn?.text.replace(/\s+/g, ' ')).toBe('[ rbac ]');
  });
});

function literal(node: ReturnType<typeof objectProperty>): Value | undefined {
  return node ? evaluate(node, { file: undefined, params: {}, placeholders: {} }) : undefined;
}
