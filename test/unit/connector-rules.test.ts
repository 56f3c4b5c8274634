/**
 * The rules of `paconn validate` that can be checked offline (tools/connector.ts, connectorFindings), each
 * with a test that breaks it on purpose, and what the flow author sees: labels without root prefixes, the
 * key fields visible when the card opens, response headers as named tokens, the Parse JSON schema of the
 * error answers, and the connection's key. See docs/power-automate.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { type JsonSchema, PROBLEM_EXAMPLES } from '../../shared/contract/openapi.js';
import {
  buildConnector,
  CONNECTION_KEY_NAME,
  type Connector,
  connectorFindings,
  DEFAULT_HOST,
  FIELD_VISIBILITY,
  isTitleCase,
  MAX_TITLE_LENGTH,
} from '../../tools/connector.js';
import { REPO_ROOT } from '../support/stack.js';

// biome-ignore lint/suspicious/noExplicitAny: fixtures changed on purpose, field by field
type Json = Record<string, any>;

const connector = buildConnector();
const operationOf = (c: Connector) => (c.apiDefinition as Json).paths['/referral-updates'].post;
const bodyOf = (c: Connector) => operationOf(c).parameters.find((p: Json) => p.in === 'body');

/** The findings of a copy of the connector changed by `change`. */
function findingsAfter(change: (c: { apiDefinition: Json; apiProperties: Json }) => void): string[] {
  const copy = structuredClone(connector) as unknown as { apiDefinition: Json; apiProperties: Json };
  change(copy);
  return connectorFindings(copy as unknown as Connector);
}

describe('paconn validate, offline', () => {
  it('the generated connector has no finding, with the default options and with an organisation’s own', () => {
    expect(connectorFindings(connector)).toEqual([]);
    const own = buildConnector({
      host: 'contoso-referrals.azurewebsites.net',
      publisher: 'Contoso Ltd',
      contactEmail: 'crm-team@contoso.com',
      privacyPolicy: 'https://contoso.com/privacy',
    });
    expect(connectorFindings(own)).toEqual([]);
    expect((own.apiDefinition as Json).info.contact).toEqual({
      name: 'Contoso Ltd',
      url: 'https://contoso-referrals.azurewebsites.net/api/openapi.json',
      email: 'crm-team@contoso.com',
    });
    expect((own.apiProperties as Json).properties).toMatchObject({
      publisher: 'Contoso Ltd',
      stackOwner: 'Contoso Ltd',
    });
    expect((own.apiDefinition as Json)['x-ms-connector-metadata']).toContainEqual({
      propertyName: 'Privacy policy',
      propertyValue: 'https://contoso.com/privacy',
    });
    expect(() => buildConnector({ contactEmail: 'nobody' })).toThrow(/email/);
    expect(() => buildConnector({ privacyPolicy: 'http://contoso.com/privacy' })).toThrow(/https/);
    expect(() => buildConnector({ publisher: ' ' })).toThrow(/publisher/);
  });

  it(`info.title: at most ${MAX_TITLE_LENGTH} characters, without API or Connector`, () => {
    const title = (connector.apiDefinition as Json).info.title as string;
    expect(title.length).toBeLessThanOrEqual(MAX_TITLE_LENGTH);
    expect(findingsAfter((c) => (c.apiDefinition.info.title = 'Partner Center Referral Updates'))).toEqual([
      'info.title: 1 to 30 characters',
    ]);
    expect(findingsAfter((c) => (c.apiDefinition.info.title = 'Referral API'))).toEqual([
      'info.title: must not contain API or Connector',
    ]);
  });

  it('info.description: 30 to 500 characters, naming no Power Platform product', () => {
    expect(findingsAfter((c) => (c.apiDefinition.info.description = 'Too short.'))).toEqual([
      'info.description: 30 to 500 characters',
    ]);
    expect(findingsAfter((c) => (c.apiDefinition.info.description += ' Made for Power Automate flows.'))).toEqual([
      'info: names a Power Platform product',
    ]);
  });

  it('info.contact is required', () => {
    expect((connector.apiDefinition as Json).info.contact.name).toEqual(expect.any(String));
    expect(findingsAfter((c) => delete c.apiDefinition.info.contact)).toEqual(['info.contact: required, with a name']);
  });

  it('x-ms-connector-metadata: Website, Privacy policy (https URLs) and Categories', () => {
    expect((connector.apiDefinition as Json)['x-ms-connector-metadata']).toEqual([
      { propertyName: 'Website', propertyValue: `https://${DEFAULT_HOST}/api/openapi.json` },
      { propertyName: 'Privacy policy', propertyValue: `https://${DEFAULT_HOST}/api/openapi.json` },
      { propertyName: 'Categories', propertyValue: 'Sales and CRM' },
    ]);
    expect(
      findingsAfter((c) => {
        c.apiDefinition['x-ms-connector-metadata'] = [{ propertyName: 'Categories', propertyValue: 'Sales and CRM' }];
      }),
    ).toEqual([
      'x-ms-connector-metadata: Website must be an https URL',
      'x-ms-connector-metadata: Privacy policy must be an https URL',
    ]);
  });

  it('labels are Title Case (every word capitalised, small words inside lowercase), at most 80 characters', () => {
    for (const good of ['Deal Value', 'ETag', 'If-Match', 'Would PUT', 'Last Applied Occurred At', 'Sales and CRM']) {
      expect(isTitleCase(good), good).toBe(true);
    }
    for (const bad of ['Deal value', 'eTag', 'If-match', 'Occurred at', 'Sales And CRM', 'Closing date']) {
      expect(isTitleCase(bad), bad).toBe(false);
    }
    expect(
      findingsAfter((c) => (bodyOf(c as never).schema.properties.dealValue['x-ms-summary'] = 'Deal value')),
    ).toEqual(['POST /referral-updates parameter body.dealValue: x-ms-summary not in Title Case: Deal value']);
    expect(findingsAfter((c) => (bodyOf(c as never)['x-ms-summary'] = 'Update event'))).toEqual([
      'POST /referral-updates parameter body: x-ms-summary not in Title Case: Update event',
    ]);
  });

  it('every property has a label, a description ending with a period, and a type (but Change from/to)', () => {
    expect(
      findingsAfter((c) => {
        delete c.apiDefinition.definitions.Problem.properties.detail['x-ms-summary'];
        delete c.apiDefinition.definitions.FieldError.properties.field['x-ms-summary'];
        c.apiDefinition.definitions.UpdateResult.properties.outcome.description = 'No period';
        delete c.apiDefinition.definitions.Problem.properties.upstream.properties.code.type;
      }),
    ).toEqual([
      'UpdateResult.outcome: description does not end with a period',
      'Problem.detail: no x-ms-summary',
      'Problem.upstream.code: no type',
      'FieldError.field: no x-ms-summary',
    ]);
    expect(findingsAfter((c) => delete bodyOf(c as never).schema.properties.notes['x-ms-summary'])).toEqual([
      'POST /referral-updates parameter body.notes: no x-ms-summary',
    ]);
    expect((connector.apiDefinition as Json).definitions.Change.properties.from.type).toBeUndefined();
  });

  it('every parameter and response header has a label and a description', () => {
    expect(
      findingsAfter((c) => {
        delete operationOf(c as never).parameters[1]['x-ms-summary'];
        delete operationOf(c as never).responses['200'].headers['MS-CorrelationId']['x-ms-summary'];
      }),
    ).toEqual([
      'POST /referral-updates parameter MS-CorrelationId: no x-ms-summary',
      'POST /referral-updates 200 header MS-CorrelationId: no x-ms-summary',
    ]);
  });

  it('the operation: PascalCase operationId, a short summary without / \\ < > * % & ? or trailing punctuation', () => {
    expect(
      findingsAfter((c) => {
        operationOf(c as never).operationId = 'updateReferral';
        operationOf(c as never).summary = 'Update a referral/opportunity.';
      }),
    ).toEqual([
      'POST /referral-updates: operationId not in PascalCase',
      'POST /referral-updates: summary contains one of / \\ < > * % & ?',
      'POST /referral-updates: summary ends with a non-alphanumeric character',
    ]);
    expect(
      findingsAfter((c) => {
        operationOf(c as never).responses.default = { description: 'Other.', schema: { type: 'object' } };
      }),
    ).toEqual(['POST /referral-updates default: a default response with a schema']);
  });

  it('a dropdown is filled by an operation of this definition; an internal required parameter has a default', () => {
    expect(
      findingsAfter((c) => {
        bodyOf(c as never).schema.properties.status['x-ms-dynamic-values'] = {
          operationId: 'ListStatuses',
          'value-path': 'id',
        };
        operationOf(c as never).parameters.push({
          name: 'Prefer',
          in: 'header',
          type: 'string',
          required: true,
          'x-ms-visibility': 'internal',
          'x-ms-summary': 'Prefer',
          description: 'Asks for an asynchronous answer.',
        });
      }),
    ).toEqual([
      'POST /referral-updates parameter Prefer: internal and required without a default',
      '#.paths./referral-updates.post.parameters[0].schema.properties.status: x-ms-dynamic-values calls ListStatuses, not in this definition',
    ]);
  });

  it('the Stage field is a dropdown of GET /stages: the internal ListStages operation of the same definition, both extensions', () => {
    const definition = connector.apiDefinition as Json;
    for (const path of ['/referral-updates', '/referral-updates?async=true']) {
      const stage = definition.paths[path].post.parameters.find((p: Json) => p.in === 'body').schema.properties.stage;
      expect(stage['x-ms-dynamic-values']).toEqual({
        operationId: 'ListStages',
        'value-collection': 'stages',
        'value-path': 'name',
        'value-title': 'title',
      });
      expect(stage['x-ms-dynamic-list']).toEqual({
        operationId: 'ListStages',
        itemsPath: 'stages',
        itemValuePath: 'name',
        itemTitlePath: 'title',
      });
    }
    const list = definition.paths['/stages'].get;
    expect(list).toMatchObject({ operationId: 'ListStages', 'x-ms-visibility': 'internal', parameters: [] });
    expect(list.responses['200'].schema).toEqual({ $ref: '#/definitions/StageList' });
    // The values and titles the dropdown reads are what the list holds.
    const item = definition.definitions.Stage.properties;
    expect(Object.keys(item)).toEqual(expect.arrayContaining(['name', 'title']));
    expect(definition.definitions.StageList.properties.stages.items).toEqual({ $ref: '#/definitions/Stage' });
    expect(connectorFindings(connector)).toEqual([]);
  });

  it('the connection parameter has a Title Case display name and a description', () => {
    expect(
      findingsAfter((c) => (c.apiProperties.properties.connectionParameters.api_key.uiDefinition.displayName = 'key')),
    ).toEqual(['connection parameter api_key: displayName missing or not in Title Case']);
  });
});

describe('what the flow author sees', () => {
  it('no root label: the body and the answers carry none (the designer would prefix every field with it)', () => {
    const definition = connector.apiDefinition as Json;
    const body = bodyOf(connector);
    expect(body['x-ms-summary']).toBe('Update Event');
    expect(body.schema['x-ms-summary']).toBeUndefined();
    expect(definition.definitions.UpdateResult['x-ms-summary']).toBeUndefined();
    expect(definition.definitions.Problem['x-ms-summary']).toBeUndefined();
    // Nested labels stay: they read "Change From", "Field Error Field".
    expect(definition.definitions.Change['x-ms-summary']).toBe('Change');
    expect(definition.definitions.FieldError['x-ms-summary']).toBe('Field Error');
    expect(findingsAfter((c) => (c.apiDefinition.definitions.UpdateResult['x-ms-summary'] = 'Update Result'))).toEqual([
      'POST /referral-updates 200 (UpdateResult): root schema has x-ms-summary',
      'POST /referral-updates?async=true 200 (UpdateResult): root schema has x-ms-summary',
    ]);
    expect(definition.definitions.Accepted['x-ms-summary']).toBeUndefined();
    expect(findingsAfter((c) => (bodyOf(c as never).schema['x-ms-summary'] = 'Update Event'))).toEqual([
      'POST /referral-updates parameter body (inline): root schema has x-ms-summary',
    ]);
  });

  it('the card opens with the fields a flow should always set: Referral ID, Stage, Status, Substatus, Event ID, Occurred At', () => {
    // The designer shows required and important fields; every other optional field starts hidden.
    const { properties, required } = bodyOf(connector).schema as {
      properties: Record<string, JsonSchema>;
      required: string[];
    };
    const shown = Object.entries(properties)
      .filter(([name, property]) => required.includes(name) || property['x-ms-visibility'] === 'important')
      .map(([name]) => name);
    expect(shown.sort()).toEqual(['eventId', 'occurredAt', 'referralId', 'stage', 'status', 'substatus']);
    expect(FIELD_VISIBILITY.eventId).toBe('important');
    expect(FIELD_VISIBILITY.occurredAt).toBe('important');
  });

  it('the queued action: Prefer is sent without being shown (internal, required, with its default); its 202 headers are labelled tokens', () => {
    const queued = (c: Connector | { apiDefinition: Json }) =>
      (c.apiDefinition as Json).paths['/referral-updates?async=true'].post;
    const prefer = (c: { apiDefinition: Json }) => queued(c).parameters.find((p: Json) => p.name === 'Prefer') as Json;
    expect(prefer(connector as never)).toMatchObject({ required: true, 'x-ms-visibility': 'internal' });
    expect(findingsAfter((c) => delete prefer(c).default)).toEqual([
      'POST /referral-updates?async=true parameter Prefer: internal and required without a default',
    ]);
    const headers = queued(connector).responses['202'].headers;
    expect(
      Object.fromEntries(Object.entries(headers as Record<string, Json>).map(([n, h]) => [n, h['x-ms-summary']])),
    ).toEqual({
      'MS-CorrelationId': 'Correlation ID',
      Location: 'Location',
      'Retry-After': 'Retry After',
      'Preference-Applied': 'Preference Applied',
    });
  });

  it('the 200 headers are labelled tokens: Correlation ID, Idempotent Replayed; Retry After on 409 and 503', () => {
    const { responses } = operationOf(connector);
    expect(responses['200'].headers['MS-CorrelationId']['x-ms-summary']).toBe('Correlation ID');
    expect(responses['200'].headers['Idempotent-Replayed']['x-ms-summary']).toBe('Idempotent Replayed');
    for (const status of ['409', '503']) {
      expect(responses[status].headers['Retry-After']['x-ms-summary'], status).toBe('Retry After');
    }
  });

  it('problem.schema.json, for Parse JSON in the error branch, accepts every problem example and tolerates growth', () => {
    const schema = connector.problemSchema;
    expect(schema.required).toEqual(['code', 'retryable']);
    expect(JSON.stringify(schema)).not.toMatch(/x-ms-|\$ref|"enum"|"additionalProperties"/);
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
    for (const [name, example] of Object.entries(PROBLEM_EXAMPLES)) expect(validate(example), name).toBe(true);
    expect(validate({ code: 'a_future_code', retryable: false, more: 1 })).toBe(true);
    expect(validate({ current: { status: null, substatus: null }, code: 'referral_closed', retryable: false })).toBe(
      true,
    );
    expect(validate({ detail: 'no code' })).toBe(false);
  });

  it(`the connection holds the host key named ${CONNECTION_KEY_NAME}, sent as x-functions-key`, () => {
    expect((connector.apiDefinition as Json).securityDefinitions).toEqual({
      api_key: { type: 'apiKey', in: 'header', name: 'x-functions-key' },
    });
    const ui = (connector.apiProperties as Json).properties.connectionParameters.api_key.uiDefinition;
    expect(ui.description).toContain(`host key named ${CONNECTION_KEY_NAME}`);
  });
});

describe('the guide (docs/power-automate.md)', () => {
  const guide = readFileSync(join(REPO_ROOT, 'docs/power-automate.md'), 'utf8');

  it('names the action card fields by their labels in the connector', () => {
    const table = guide.slice(guide.indexOf('**The action**'), guide.indexOf('## 5.'));
    const rows = table.split('\n').filter((line) => /^\| [A-Z]/.test(line) && !line.startsWith('| field'));
    const labels = rows.map((row) => row.split('|')[1]?.trim());
    expect(labels.length).toBeGreaterThan(5);
    const summaries = Object.values(bodyOf(connector).schema.properties as Record<string, JsonSchema>).map(
      (property) => property['x-ms-summary'],
    );
    for (const label of labels) expect(summaries, String(label)).toContain(label);
  });

  it(`names the key ${CONNECTION_KEY_NAME} and the files it tells authors to use`, () => {
    expect(guide).toContain(`--key-name ${CONNECTION_KEY_NAME}`);
    expect(guide).toContain('connector/problem.schema.json');
  });
});
