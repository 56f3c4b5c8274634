/**
 * The Power Automate custom connector (microsoft/PowerPlatformConnectors layout): apiDefinition.swagger.json
 * (OpenAPI 2.0, which is all custom connectors accept) and apiProperties.json, converted from the OpenAPI
 * 3.1 document (shared/contract/openapi.ts), itself generated from the zod schemas of the contract, plus
 * problem.schema.json for a flow's Parse JSON step. Pure; the files are written by
 * tools/generate-connector.ts (`npm run connector`), which first checks `paconn validate`'s offline rules
 * (connectorFindings). docs/power-automate.md is the flow author's side of it.
 *
 * The schema conversion accepts only what it can express exactly in OpenAPI 2.0 (single `type`, nullable
 * as `x-nullable`, `const` as a one-value `enum`, `title` as the `x-ms-summary` label) and throws on
 * anything else, so a new construct in the contract fails the generator instead of producing a connector
 * that says something else.
 */

import type { HeaderObject, ParameterObject, ReferenceObject, SchemaObject } from 'openapi3-ts/oas31';
import { ASYNC_HEADERS, RESPOND_ASYNC } from '../shared/contract/async.js';
import { REQUEST_HEADERS, RESPONSE_HEADERS } from '../shared/contract/headers.js';
import {
  buildOpenApiDocument,
  CONTRACT_VERSION,
  type JsonSchema,
  OPERATION_IDS,
  type OpenApiDocument,
  PATHS,
} from '../shared/contract/openapi.js';
import type { updateEventSchema } from '../shared/contract/update-event.js';
import { isJsonObject } from '../shared/core/referral.js';

/** Replace it in the custom connector's General tab (or generate with `--host`). */
export const DEFAULT_HOST = 'your-function-app.azurewebsites.net';
/** The publisher, stack owner and contact name, unless `--publisher` names your organisation. */
export const DEFAULT_PUBLISHER = 'Partner Center referral webhook';
/**
 * The name of the host key the connection holds (docs/power-automate.md, "The key"). A host key, not a
 * function key: a function key opens only its own function, and the connector calls more than one (the
 * update, the stage list of the Stage dropdown), all with the connection's one key. The status URL of a
 * queued update needs no key: it carries its own token (docs/async-delivery.md).
 */
export const CONNECTION_KEY_NAME = 'power-automate';
export const MAX_DEFINITION_BYTES = 1024 * 1024;
export const CONNECTOR_FILES = ['apiDefinition.swagger.json', 'apiProperties.json', 'problem.schema.json'] as const;
export type ConnectorFileName = (typeof CONNECTOR_FILES)[number];

type Visibility = 'important' | 'advanced' | 'none';

/**
 * How prominent each field of the event is in the action's card (`x-ms-visibility`). The current designer
 * shows required and `important` fields; every other optional one (`none` as well as `advanced`) starts
 * hidden under "Advanced parameters" until it gets a value. So the fields a flow should always set are
 * `important`: the event id (redeliveries are safe only with one) and occurredAt (order). Typed by the
 * schema: a new field must be placed here.
 */
export const FIELD_VISIBILITY: Record<keyof typeof updateEventSchema.shape, Visibility> = {
  referralId: 'important',
  stage: 'important',
  status: 'important',
  substatus: 'important',
  eventId: 'important',
  occurredAt: 'important',
  dealValue: 'none',
  currency: 'none',
  closingDate: 'none',
  statusReason: 'advanced',
  notes: 'advanced',
  name: 'advanced',
  externalReferenceId: 'advanced',
  dryRun: 'advanced',
};

/**
 * Request headers offered by the action. The event id goes in the body's eventId (one way to set it in a
 * flow, not three); the Standard Webhooks signature headers need an HMAC a flow cannot compute.
 */
const CONNECTOR_HEADERS: Record<string, { summary: string; visibility: Visibility }> = {
  [REQUEST_HEADERS.correlationId]: { summary: 'Correlation ID', visibility: 'advanced' },
};

/** Labels of the response headers: on the 200 they are dynamic content, named by these. */
const RESPONSE_HEADER_LABELS: Record<string, string> = {
  [RESPONSE_HEADERS.correlationId]: 'Correlation ID',
  [RESPONSE_HEADERS.replayed]: 'Idempotent Replayed',
  [RESPONSE_HEADERS.retryAfter]: 'Retry After',
  [ASYNC_HEADERS.location]: 'Location',
  [ASYNC_HEADERS.preferenceApplied]: 'Preference Applied',
};

/**
 * The queued action (contract v1.1, docs/power-automate.md "Queued updates"): the same event, sent with
 * `Prefer: respond-async`. Power Automate follows a `202` with a `Location` by itself (the asynchronous
 * pattern, on by default) and ends with the status URL's final answer, so the action declares the `202`
 * and, as its outputs, the final `200`.
 *
 * OpenAPI 2.0 has one operation per path and method, and the synchronous action already is the POST on
 * /referral-updates: the queued one's path carries the `async=true` query the adapter also honours (the
 * same request either way; `?async=true` wins over `Prefer`, and both ask for the same thing).
 */
export const QUEUED_ACTION = {
  operationId: 'QueueReferralUpdate',
  path: `${PATHS.updateReferral}?async=true`,
  summary: 'Queue a referral update',
  description: [
    'Asynchronous: the adapter checks the event, stores and queues it, and answers 202 with a status URL at once; the action then polls that URL until the event is applied, for hours if Partner Center is throttling or down, and its outputs are those of Update a referral.',
    'Branch on the final answer: 200 (outcome), a final 4xx problem (failed), or 424 dead_lettered when it could not be applied within the maximum age (replay it from the operations).',
    'Sending the same event id again is safe: it answers with the same status URL.',
  ].join('\n\n'),
} as const;

/** The paragraph of the POST's description about asynchronous delivery: the queued action says it its own way. */
const ASYNC_PARAGRAPH = 'Asynchronous delivery (contract v1.1)';

export interface ConnectorOptions {
  /** Host name of the function app, without scheme or path. */
  host?: string;
  /** Your organisation: publisher, stack owner and contact name. */
  publisher?: string;
  /** The contact's email address (optional). */
  contactEmail?: string;
  /** Your privacy statement (https); by default the website, the app's own OpenAPI document. */
  privacyPolicy?: string;
}

export type SwaggerSchema = JsonSchema;

/** Keywords copied unchanged into an OpenAPI 2.0 Schema Object. */
const SAME_KEYWORDS = new Set([
  'type',
  'format',
  'description',
  'enum',
  'required',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
]);

function fail(path: string, message: string): never {
  throw new Error(`connector: cannot express ${path} in OpenAPI 2.0: ${message}`);
}

/** A JSON Schema 2020-12 (OpenAPI 3.1) schema as an OpenAPI 2.0 Schema Object. */
export function toSwaggerSchema(schema: JsonSchema | SchemaObject | ReferenceObject, path = '#'): SwaggerSchema {
  const { anyOf, type, ...rest } = schema as JsonSchema;
  if (anyOf !== undefined) {
    // Nullable: `anyOf: [X, { type: 'null' }]` is X with x-nullable.
    if (!Array.isArray(anyOf)) fail(path, 'anyOf is not an array');
    const others = anyOf.filter(
      (branch) => !(isJsonObject(branch) && branch.type === 'null' && Object.keys(branch).length === 1),
    );
    if (others.length !== 1 || anyOf.length !== 2 || type !== undefined || !isJsonObject(others[0])) {
      fail(path, 'anyOf other than "X or null"');
    }
    const inner = toSwaggerSchema(others[0], `${path}/anyOf`);
    return { ...inner, ...toSwaggerSchema(rest, path), 'x-nullable': true };
  }
  const out: SwaggerSchema = {};
  if (type !== undefined) {
    if (typeof type === 'string') {
      out.type = type;
    } else if (Array.isArray(type) && type.length === 2 && type.includes('null')) {
      out.type = type.find((t) => t !== 'null');
      out['x-nullable'] = true;
    } else {
      fail(path, `type ${JSON.stringify(type)}`);
    }
  }
  for (const [keyword, value] of Object.entries(rest)) {
    const at = `${path}/${keyword}`;
    if (SAME_KEYWORDS.has(keyword)) out[keyword] = value;
    else if (keyword === 'title') out['x-ms-summary'] = value;
    else if (keyword === 'examples') {
      if (!Array.isArray(value) || value.length === 0) fail(at, 'examples is not a non-empty array');
      out.example = value[0];
    } else if (keyword === 'const') out.enum = [value];
    else if (keyword === '$ref') {
      if (typeof value !== 'string' || !value.startsWith('#/components/schemas/')) fail(at, `$ref ${String(value)}`);
      out.$ref = value.replace('#/components/schemas/', '#/definitions/');
    } else if (keyword === 'properties') {
      if (!isJsonObject(value)) fail(at, 'properties is not an object');
      out.properties = Object.fromEntries(
        Object.entries(value).map(([name, property]) => {
          if (!isJsonObject(property)) fail(`${at}/${name}`, 'not a schema');
          return [name, toSwaggerSchema(property, `${at}/${name}`)];
        }),
      );
    } else if (keyword === 'items') {
      if (!isJsonObject(value)) fail(at, 'items is not a single schema');
      out.items = toSwaggerSchema(value, at);
    } else if (keyword === 'additionalProperties') {
      out.additionalProperties = typeof value === 'boolean' ? value : toSwaggerSchema(value as JsonSchema, at);
    } else if (keyword === 'propertyNames') {
      // Object keys are always strings in OpenAPI 2.0; only `{ type: 'string' }` is accepted.
      if (!isJsonObject(value) || value.type !== 'string' || Object.keys(value).length !== 1) fail(at, 'propertyNames');
    } else fail(at, `keyword ${keyword}`);
  }
  return out;
}

/**
 * The Stage field is a dropdown of the configured stages (`GET /stages`, the internal ListStages operation):
 * `x-ms-dynamic-values`, and `x-ms-dynamic-list` beside it for the designers that read the newer extension.
 * The flow author may still type a value or pass the CRM's column.
 */
const STAGE_DROPDOWN = {
  'x-ms-dynamic-values': {
    operationId: OPERATION_IDS.listStages,
    'value-collection': 'stages',
    'value-path': 'name',
    'value-title': 'title',
  },
  'x-ms-dynamic-list': {
    operationId: OPERATION_IDS.listStages,
    itemsPath: 'stages',
    itemValuePath: 'name',
    itemTitlePath: 'title',
  },
} as const;

/** Adds `x-ms-visibility` to the event's properties (the labels come from their titles), and the Stage dropdown. */
function withVisibility(schema: SwaggerSchema): SwaggerSchema {
  const properties = schema.properties as Record<string, SwaggerSchema>;
  const names = Object.keys(properties);
  const placed = Object.keys(FIELD_VISIBILITY);
  const unplaced = names.filter((name) => !placed.includes(name));
  const unknown = placed.filter((name) => !names.includes(name));
  if (unplaced.length > 0 || unknown.length > 0) {
    throw new Error(
      `connector: FIELD_VISIBILITY does not match the event's fields (${[...unplaced, ...unknown].join(', ')})`,
    );
  }
  const decorated: Record<string, SwaggerSchema> = {};
  for (const name of names) {
    const visibility = FIELD_VISIBILITY[name as keyof typeof FIELD_VISIBILITY];
    decorated[name] = {
      ...properties[name],
      ...(visibility === 'none' ? {} : { 'x-ms-visibility': visibility }),
      ...(name === 'stage' ? STAGE_DROPDOWN : {}),
    };
  }
  return { ...withoutLabel(schema), properties: decorated };
}

/**
 * A root schema without its label. The designer prefixes every field and token with the labels of the
 * schemas above it ("Update Event Referral ID", "Update Result Outcome"); below the root that reads well
 * ("Change From"), at the root it is noise. The body parameter keeps its own label, which is no prefix.
 */
function withoutLabel(schema: SwaggerSchema): SwaggerSchema {
  const { 'x-ms-summary': _label, ...rest } = schema;
  return rest;
}

function resolveComponent<T>(document: OpenApiDocument, ref: string | undefined, kind: 'parameters' | 'headers'): T {
  const prefix = `#/components/${kind}/`;
  const name = ref?.slice(prefix.length) ?? '';
  const found = (document.components[kind] as Record<string, unknown>)[name];
  if (!ref?.startsWith(prefix) || found === undefined) throw new Error(`connector: unresolved ${ref}`);
  return found as T;
}

function swaggerHeader(name: string, header: HeaderObject): JsonSchema {
  if (!header.schema || '$ref' in header.schema) throw new Error('connector: a header schema is not inline');
  const label = RESPONSE_HEADER_LABELS[name];
  if (label === undefined) throw new Error(`connector: the response header ${name} has no label`);
  const { type, format, enum: values } = header.schema;
  return {
    type,
    ...(format === undefined ? {} : { format }),
    ...(values === undefined ? {} : { enum: values }),
    'x-ms-summary': label,
    description: header.description,
  };
}

/** The definitions a schema needs, transitively. */
function referencedDefinitions(roots: unknown[], all: Record<string, SwaggerSchema>): string[] {
  const found = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (isJsonObject(value)) {
      for (const [key, member] of Object.entries(value)) {
        if (key === '$ref' && typeof member === 'string') {
          const name = member.replace('#/definitions/', '');
          if (!found.has(name)) {
            found.add(name);
            visit(all[name]);
          }
        } else visit(member);
      }
    }
  };
  roots.forEach(visit);
  return Object.keys(all).filter((name) => found.has(name));
}

type ActionKind = 'sync' | 'queued';

function updateReferralOperation(
  document: OpenApiDocument,
  definitions: Record<string, SwaggerSchema>,
  kind: ActionKind,
) {
  const operation = document.paths[PATHS.updateReferral]?.post;
  if (operation?.operationId !== OPERATION_IDS.updateReferral)
    throw new Error('connector: no UpdateReferral operation');
  const status = document.paths[PATHS.updateStatus]?.get;
  if (status?.operationId !== OPERATION_IDS.updateStatus) throw new Error('connector: no GetUpdateStatus operation');
  const body = operation.requestBody?.content['application/json']?.schema;
  if (!body || typeof body.$ref !== 'string') throw new Error('connector: the request body is not a schema reference');
  const eventSchema = definitions[body.$ref.replace('#/components/schemas/', '')];
  if (!eventSchema) throw new Error(`connector: unresolved ${body.$ref}`);

  const headers: JsonSchema[] = (operation.parameters ?? [])
    .map(({ $ref }) => resolveComponent<ParameterObject>(document, $ref, 'parameters'))
    .filter((parameter) => parameter.in === 'header' && CONNECTOR_HEADERS[parameter.name] !== undefined)
    .map((parameter) => {
      const { summary, visibility } = CONNECTOR_HEADERS[parameter.name] as { summary: string; visibility: Visibility };
      if (!parameter.schema) throw new Error(`connector: parameter ${parameter.name} has no schema`);
      const schema = toSwaggerSchema(parameter.schema, `parameter ${parameter.name}`);
      return {
        name: parameter.name,
        in: 'header',
        required: parameter.required ?? false,
        ...schema,
        description: parameter.description,
        'x-ms-summary': summary,
        ...(visibility === 'none' ? {} : { 'x-ms-visibility': visibility }),
      };
    });
  if (headers.length !== Object.keys(CONNECTOR_HEADERS).length)
    throw new Error('connector: a connector header is missing');
  if (kind === 'queued') headers.push(preferParameter(document));

  // The synchronous action keeps the answers of contract v1. The queued one gets the 202, the status URL's
  // final 200 as its outputs (what the action ends with after polling) and its 424 dead_lettered.
  const { '202': accepted, ...answers } = operation.responses;
  if (!accepted || !status.responses['200'] || !status.responses['424'])
    throw new Error('connector: the 202, the status 200 or the 424 dead_lettered is missing');
  const declared =
    kind === 'sync'
      ? answers
      : { ...answers, '200': status.responses['200'], '202': accepted, '424': status.responses['424'] };
  const responses: Record<string, JsonSchema> = {};
  for (const [status, response] of Object.entries(declared).sort(([a], [b]) => Number(a) - Number(b))) {
    const media = Object.values(response.content ?? {})[0];
    // The error answers narrow Problem to their codes with allOf; the connector keeps the Problem reference
    // and lists the codes in the description.
    const schema = media?.schema;
    const ref = schema && 'allOf' in schema && Array.isArray(schema.allOf) ? schema.allOf[0] : schema;
    responses[status] = {
      description: response.description,
      ...(ref ? { schema: toSwaggerSchema(ref, `response ${status}`) } : {}),
      headers: Object.fromEntries(
        Object.entries(response.headers ?? {}).map(([name, { $ref }]) => [
          name,
          swaggerHeader(name, resolveComponent<HeaderObject>(document, $ref, 'headers')),
        ]),
      ),
    };
  }

  const paragraphs = String(operation.description).split('\n\n');
  const syncDescription = paragraphs.filter((paragraph) => !paragraph.startsWith(ASYNC_PARAGRAPH));
  if (syncDescription.length !== paragraphs.length - 1)
    throw new Error(`connector: the POST's description has no "${ASYNC_PARAGRAPH}" paragraph`);
  return {
    operation: {
      ...(kind === 'sync'
        ? { operationId: operation.operationId, summary: operation.summary, description: syncDescription.join('\n\n') }
        : {
            operationId: QUEUED_ACTION.operationId,
            summary: QUEUED_ACTION.summary,
            description: QUEUED_ACTION.description,
          }),
      'x-ms-visibility': 'important',
      parameters: [
        {
          name: 'body',
          in: 'body',
          required: true,
          description: operation.requestBody?.description,
          'x-ms-summary': 'Update Event',
          schema: withVisibility(eventSchema),
        },
        ...headers,
      ],
      responses,
    },
    responseRoots: Object.values(responses),
  };
}

/**
 * `GET /stages` as the internal ListStages operation: never an action of its own, it fills the Stage dropdown
 * (STAGE_DROPDOWN), called with the connection's key (a host key, so it opens this function too).
 */
function listStagesOperation(document: OpenApiDocument) {
  const operation = document.paths[PATHS.stages]?.get;
  if (operation?.operationId !== OPERATION_IDS.listStages) throw new Error('connector: no ListStages operation');
  const ok = operation.responses['200'];
  const schema = ok?.content?.['application/json']?.schema;
  if (!ok || !schema) throw new Error('connector: the stage list has no 200 schema');
  const response = { description: ok.description, schema: toSwaggerSchema(schema, 'response ListStages 200') };
  return {
    operation: {
      operationId: operation.operationId,
      summary: operation.summary,
      description: operation.description,
      'x-ms-visibility': 'internal',
      parameters: [],
      responses: { '200': response },
    },
    responseRoots: [response],
  };
}

/**
 * `Prefer: respond-async` on the queued action: required, with its value as the default, and internal (the
 * flow author never sees it, the connector always sends it).
 */
function preferParameter(document: OpenApiDocument): JsonSchema {
  const prefer = resolveComponent<ParameterObject>(document, '#/components/parameters/Prefer', 'parameters');
  if (prefer.name !== ASYNC_HEADERS.prefer || prefer.in !== 'header') throw new Error('connector: no Prefer header');
  return {
    name: prefer.name,
    in: 'header',
    required: true,
    type: 'string',
    default: RESPOND_ASYNC,
    description: prefer.description,
    'x-ms-summary': 'Prefer',
    'x-ms-visibility': 'internal',
  };
}

export interface Connector {
  apiDefinition: JsonSchema;
  apiProperties: JsonSchema;
  /** The Problem schema for a Parse JSON action in a flow's error branch (docs/power-automate.md). */
  problemSchema: JsonSchema;
}

/** Definitions that are a response's root: they lose their label (see withoutLabel). */
function unlabelRoots(
  definitions: Record<string, SwaggerSchema>,
  responseRoots: JsonSchema[],
): Record<string, SwaggerSchema> {
  const roots = new Set(
    responseRoots.flatMap((response) => {
      const ref = (response.schema as JsonSchema | undefined)?.$ref;
      return typeof ref === 'string' ? [ref.replace('#/definitions/', '')] : [];
    }),
  );
  const out = { ...definitions };
  for (const name of roots) {
    const nested = Object.entries(definitions).some(
      ([other, schema]) => other !== name && JSON.stringify(schema).includes(`"#/definitions/${name}"`),
    );
    // Its label would be missing where it is nested, and there it is a useful prefix.
    if (nested) throw new Error(`connector: ${name} is both a response root and nested in another definition`);
    out[name] = withoutLabel(definitions[name] as SwaggerSchema);
  }
  return out;
}

/**
 * The Problem definition as a plain JSON Schema for Parse JSON: references inlined, `x-nullable` as a
 * type with null, no labels, no enums or closed objects (a flow keeps its pasted copy; a new error code
 * or field must not make it fail). It requires only code and retryable, what a flow branches on.
 */
function parseJsonSchema(definitions: Record<string, SwaggerSchema>, name: string): JsonSchema {
  const KEEP = new Set(['type', 'description', 'properties', 'items']);
  const convert = (schema: SwaggerSchema): JsonSchema => {
    if (typeof schema.$ref === 'string') {
      const target = definitions[schema.$ref.replace('#/definitions/', '')];
      if (!target) throw new Error(`connector: unresolved ${schema.$ref}`);
      return convert(target);
    }
    const out: JsonSchema = {};
    for (const [keyword, value] of Object.entries(schema)) {
      if (!KEEP.has(keyword)) continue;
      if (keyword === 'type') out.type = schema['x-nullable'] === true ? [value, 'null'] : value;
      else if (keyword === 'properties') {
        out.properties = Object.fromEntries(
          Object.entries(value as Record<string, SwaggerSchema>).map(([key, member]) => [key, convert(member)]),
        );
      } else if (keyword === 'items') out.items = convert(value as SwaggerSchema);
      else out[keyword] = value;
    }
    return out;
  };
  const root = definitions[name];
  if (!root) throw new Error(`connector: no ${name} definition`);
  return { ...convert(root), required: ['code', 'retryable'] };
}

function checkOptions(options: ConnectorOptions): void {
  if (options.publisher !== undefined && options.publisher.trim() === '') {
    throw new Error('connector: publisher must not be empty');
  }
  if (options.contactEmail !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(options.contactEmail)) {
    throw new Error(`connector: contact email must be an email address, got ${options.contactEmail}`);
  }
  if (options.privacyPolicy !== undefined && !isHttpsUrl(options.privacyPolicy)) {
    throw new Error(`connector: privacy policy must be an https URL, got ${options.privacyPolicy}`);
  }
}

function isHttpsUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}

export function buildConnector(options: ConnectorOptions = {}, document = buildOpenApiDocument()): Connector {
  const host = options.host ?? DEFAULT_HOST;
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/.test(host)) {
    throw new Error(`connector: host must be a host name such as ${DEFAULT_HOST} (no scheme or path), got ${host}`);
  }
  checkOptions(options);
  const publisher = options.publisher ?? DEFAULT_PUBLISHER;
  // The app's own contract document: public (anonymous) and about exactly this service.
  const website = `https://${host}/api${PATHS.openApi}`;
  const converted = Object.fromEntries(
    Object.entries(document.components.schemas).map(([name, schema]) => [name, toSwaggerSchema(schema, name)]),
  );
  const sync = updateReferralOperation(document, converted, 'sync');
  const queued = updateReferralOperation(document, converted, 'queued');
  const stages = listStagesOperation(document);
  const responseRoots = [...sync.responseRoots, ...queued.responseRoots, ...stages.responseRoots];
  const definitions = unlabelRoots(converted, responseRoots);
  const used = referencedDefinitions(responseRoots, definitions);
  const functionKey = document.components.securitySchemes.functionKey;
  if (functionKey?.in !== 'header') throw new Error('connector: no function key header scheme');

  const apiDefinition = {
    swagger: '2.0',
    info: {
      title: 'Partner Center Referrals',
      description:
        'Updates Microsoft Partner Center referrals through your Partner Center referral webhook function app: status, substatus, deal value, currency, closing date and notes, with transition rules, safe retries and idempotent redelivery.',
      version: CONTRACT_VERSION,
      contact: {
        name: publisher,
        url: website,
        ...(options.contactEmail === undefined ? {} : { email: options.contactEmail }),
      },
    },
    host,
    basePath: '/api',
    schemes: ['https'],
    consumes: ['application/json'],
    produces: ['application/json', 'application/problem+json'],
    paths: {
      [PATHS.updateReferral]: { post: sync.operation },
      [QUEUED_ACTION.path]: { post: queued.operation },
      [PATHS.stages]: { get: stages.operation },
    },
    definitions: Object.fromEntries(used.map((name) => [name, definitions[name]])),
    parameters: {},
    responses: {},
    securityDefinitions: {
      api_key: { type: 'apiKey', in: 'header', name: functionKey.name },
    },
    security: [{ api_key: [] }],
    tags: [],
    'x-ms-connector-metadata': [
      { propertyName: 'Website', propertyValue: website },
      { propertyName: 'Privacy policy', propertyValue: options.privacyPolicy ?? website },
      { propertyName: 'Categories', propertyValue: 'Sales and CRM' },
    ],
  };

  const apiProperties = {
    properties: {
      connectionParameters: {
        api_key: {
          type: 'securestring',
          uiDefinition: {
            displayName: 'Host Key',
            description: `The function app's host key named ${CONNECTION_KEY_NAME} (Function App > Functions > App keys > Host keys), created for Power Automate.`,
            tooltip: `Sent as the ${functionKey.name} header. A function key of referral-updates opens only that function.`,
            constraints: { tabIndex: 2, clearText: false, required: 'true' },
          },
        },
      },
      iconBrandColor: '#0078d4',
      capabilities: [],
      publisher,
      stackOwner: publisher,
    },
  };
  return { apiDefinition, apiProperties, problemSchema: parseJsonSchema(converted, 'Problem') };
}

/**
 * The rules of `paconn validate` that can be checked offline, as findings (empty when it passes). That
 * command sends the definition to a hosted validator with the certification rules on; the rules below
 * are its published guidance, so the connector stays valid as it grows:
 * https://learn.microsoft.com/en-us/connectors/custom-connectors/connector-string-guidance,
 * https://learn.microsoft.com/en-us/connectors/custom-connectors/coding-standards and
 * https://learn.microsoft.com/en-us/connectors/custom-connectors/openapi-extensions.
 */
export function connectorFindings({
  apiDefinition,
  apiProperties,
}: Pick<Connector, 'apiDefinition' | 'apiProperties'>) {
  const findings: string[] = [];
  const fail = (at: string, message: string) => findings.push(`${at}: ${message}`);
  const definition = apiDefinition as {
    info?: { title?: string; description?: string; contact?: { name?: string; url?: string; email?: string } };
    paths?: Record<string, Record<string, JsonSchema>>;
    definitions?: Record<string, SwaggerSchema>;
    'x-ms-connector-metadata'?: Array<{ propertyName?: string; propertyValue?: unknown }>;
  };
  const definitions = definition.definitions ?? {};

  // info: the title, the description, the contact.
  const title = definition.info?.title ?? '';
  if (title.length === 0 || title.length > MAX_TITLE_LENGTH) fail('info.title', `1 to ${MAX_TITLE_LENGTH} characters`);
  if (/\b(api|connector)\b/i.test(title)) fail('info.title', 'must not contain API or Connector');
  const description = definition.info?.description ?? '';
  if (description.length < 30 || description.length > 500) fail('info.description', '30 to 500 characters');
  for (const text of [title, description]) {
    if (/power apps|power automate|logic apps|power platform/i.test(text))
      fail('info', 'names a Power Platform product');
  }
  const contact = definition.info?.contact;
  if (!contact?.name) fail('info.contact', 'required, with a name');
  if (contact?.url !== undefined && !isHttpsUrl(contact.url)) fail('info.contact.url', 'not an https URL');

  // x-ms-connector-metadata: Website, Privacy policy, Categories.
  const metadata = new Map((definition['x-ms-connector-metadata'] ?? []).map((m) => [m.propertyName, m.propertyValue]));
  for (const name of ['Website', 'Privacy policy']) {
    if (!isHttpsUrl(metadata.get(name))) fail('x-ms-connector-metadata', `${name} must be an https URL`);
  }
  const categories = String(metadata.get('Categories') ?? '')
    .split(';')
    .filter((c) => c.trim() !== '');
  if (categories.length < 1 || categories.length > 2) fail('x-ms-connector-metadata', 'Categories: one or two');

  const label = (at: string, node: JsonSchema): void => {
    const summary = node['x-ms-summary'];
    if (typeof summary !== 'string' || summary === '') fail(at, 'no x-ms-summary');
    else if (summary.length > 80) fail(at, `x-ms-summary over 80 characters: ${summary}`);
    else if (!isTitleCase(summary)) fail(at, `x-ms-summary not in Title Case: ${summary}`);
  };
  const described = (at: string, node: JsonSchema): void => {
    const text = node.description;
    if (typeof text !== 'string' || text === '') fail(at, 'no description');
    else if (!text.trimEnd().endsWith('.')) fail(at, 'description does not end with a period');
  };
  /** Every property below a schema: labelled, described and typed. */
  const walk = (at: string, schema: SwaggerSchema): void => {
    if (typeof schema.$ref === 'string') return;
    for (const [name, property] of Object.entries((schema.properties ?? {}) as Record<string, SwaggerSchema>)) {
      const where = `${at}.${name}`;
      label(where, property);
      described(where, property);
      if (property.type === undefined && property.$ref === undefined && !UNTYPED.has(where)) fail(where, 'no type');
      walk(where, property);
    }
    if (schema.items) walk(`${at}[]`, schema.items as SwaggerSchema);
  };
  for (const [name, schema] of Object.entries(definitions)) walk(name, schema);

  /** The schema at the root of a body or an answer, through its reference. */
  const rootOf = (schema: SwaggerSchema): [string, SwaggerSchema] => {
    const ref = typeof schema.$ref === 'string' ? schema.$ref.replace('#/definitions/', '') : undefined;
    return ref === undefined ? ['inline', schema] : [ref, definitions[ref] ?? {}];
  };
  const operationIds = new Set<string>();
  for (const methods of Object.values(definition.paths ?? {})) {
    for (const operation of Object.values(methods)) operationIds.add(String(operation.operationId));
  }

  for (const [path, methods] of Object.entries(definition.paths ?? {})) {
    for (const [method, operation] of Object.entries(methods)) {
      const at = `${method.toUpperCase()} ${path}`;
      if (!/^[A-Z][A-Za-z0-9]*(_[A-Z][A-Za-z0-9]*)?$/.test(String(operation.operationId))) {
        fail(at, 'operationId not in PascalCase');
      }
      const summary = String(operation.summary ?? '');
      if (summary === '' || summary.length > 80) fail(at, 'summary: 1 to 80 characters');
      if (/[/\\<>*%&?]/.test(summary)) fail(at, 'summary contains one of / \\ < > * % & ?');
      if (!/[A-Za-z0-9]$/.test(summary)) fail(at, 'summary ends with a non-alphanumeric character');
      described(at, operation);
      if (operation.description === operation.summary) fail(at, 'description equals the summary');

      for (const parameter of (operation.parameters ?? []) as SwaggerSchema[]) {
        const where = `${at} parameter ${String(parameter.name)}`;
        label(where, parameter);
        described(where, parameter);
        if (
          parameter['x-ms-visibility'] === 'internal' &&
          parameter.required === true &&
          parameter.default === undefined
        ) {
          fail(where, 'internal and required without a default');
        }
        if (parameter.in === 'body') {
          const [rootName, root] = rootOf(parameter.schema as SwaggerSchema);
          if (root['x-ms-summary'] !== undefined) fail(`${where} (${rootName})`, 'root schema has x-ms-summary');
          walk(where, root);
        }
      }

      for (const [status, response] of Object.entries(operation.responses as Record<string, JsonSchema>)) {
        const where = `${at} ${status}`;
        described(where, response);
        if (status === 'default' && response.schema !== undefined) fail(where, 'a default response with a schema');
        if (response.schema !== undefined) {
          const [rootName, root] = rootOf(response.schema as SwaggerSchema);
          if (root['x-ms-summary'] !== undefined) fail(`${where} (${rootName})`, 'root schema has x-ms-summary');
          if (rootName === 'inline') walk(where, root);
        }
        for (const [name, header] of Object.entries((response.headers ?? {}) as Record<string, JsonSchema>)) {
          label(`${where} header ${name}`, header);
          described(`${where} header ${name}`, header);
        }
      }
    }
  }

  // Dropdowns filled by another operation: it must be in this definition, called with the same connection.
  const visitDynamic = (value: unknown, at: string): void => {
    if (Array.isArray(value)) {
      for (const [i, member] of value.entries()) visitDynamic(member, `${at}[${i}]`);
    } else if (isJsonObject(value)) {
      for (const [key, member] of Object.entries(value)) {
        if ((key === 'x-ms-dynamic-values' || key === 'x-ms-dynamic-list') && isJsonObject(member)) {
          if (!operationIds.has(String(member.operationId)))
            fail(at, `${key} calls ${String(member.operationId)}, not in this definition`);
        } else visitDynamic(member, `${at}.${key}`);
      }
    }
  };
  visitDynamic(apiDefinition, '#');

  const parameters = (apiProperties as { properties?: { connectionParameters?: Record<string, JsonSchema> } })
    .properties?.connectionParameters;
  for (const [name, parameter] of Object.entries(parameters ?? {})) {
    const ui = parameter.uiDefinition as JsonSchema | undefined;
    if (typeof ui?.displayName !== 'string' || !isTitleCase(ui.displayName)) {
      fail(`connection parameter ${name}`, 'displayName missing or not in Title Case');
    }
    if (typeof ui?.description !== 'string' || ui.description === '')
      fail(`connection parameter ${name}`, 'no description');
  }
  return findings;
}

/** Learn's connector string guidance: "a maximum of 30 characters in the connector title". */
export const MAX_TITLE_LENGTH = 30;

/** Properties that hold any JSON value and so have no type (a type would make the runtime reject some). */
const UNTYPED = new Set(['Change.from', 'Change.to', 'UpdateResult.wouldPatch.operations[].value']);

/** Lowercase inside a Title Case label (articles, conjunctions, short prepositions). */
const SMALL_WORDS = new Set([
  'a',
  'an',
  'and',
  'as',
  'at',
  'but',
  'by',
  'for',
  'in',
  'of',
  'on',
  'or',
  'the',
  'to',
  'via',
]);

/** Title Case: every word capitalised (each part of a hyphenated one), small words inside lowercase. */
export function isTitleCase(label: string): boolean {
  const words = label.split(' ');
  return words.every((word, i) => {
    const inner = i > 0 && i < words.length - 1;
    if (inner && SMALL_WORDS.has(word.toLowerCase())) return word === word.toLowerCase();
    return word.split('-').every((part) => /^[A-Z0-9]/.test(part));
  });
}

/**
 * JSON as Biome formats it (biome.json: 2 spaces, 120 columns): objects expanded, arrays of scalars on
 * one line when they fit, one element per line otherwise; a trailing newline. So the generated files
 * pass `biome check` unchanged and regenerate byte for byte.
 */
export function formatJson(value: unknown, lineWidth = 120): string {
  const render = (node: unknown, indent: string, lead: number, trail: number): string => {
    if (Array.isArray(node)) {
      if (node.length === 0) return '[]';
      const inner = `${indent}  `;
      if (node.every((element) => typeof element !== 'object' || element === null)) {
        const flat = `[${node.map((element) => JSON.stringify(element)).join(', ')}]`;
        if (lead + flat.length + trail <= lineWidth) return flat;
      }
      const lines = node.map(
        (element, i) => `${inner}${render(element, inner, inner.length, i < node.length - 1 ? 1 : 0)}`,
      );
      return `[\n${lines.join(',\n')}\n${indent}]`;
    }
    if (typeof node === 'object' && node !== null) {
      const entries = Object.entries(node).filter(([, member]) => member !== undefined);
      if (entries.length === 0) return '{}';
      const inner = `${indent}  `;
      const lines = entries.map(([key, member], i) => {
        const prefix = `${inner}${JSON.stringify(key)}: `;
        return `${prefix}${render(member, inner, prefix.length, i < entries.length - 1 ? 1 : 0)}`;
      });
      return `{\n${lines.join(',\n')}\n${indent}}`;
    }
    const scalar = JSON.stringify(node);
    if (scalar === undefined) throw new Error(`formatJson: ${typeof node} is not JSON`);
    return scalar;
  };
  return `${render(value, '', 0, 0)}\n`;
}

/** The connector files, as written to connector/. */
export function connectorFiles(options: ConnectorOptions = {}): Record<ConnectorFileName, string> {
  const { apiDefinition, apiProperties, problemSchema } = buildConnector(options);
  return {
    'apiDefinition.swagger.json': formatJson(apiDefinition),
    'apiProperties.json': formatJson(apiProperties),
    'problem.schema.json': formatJson(problemSchema),
  };
}
