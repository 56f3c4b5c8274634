/**
 * The response schemas against the code that writes the answers: every code of the catalogue, through
 * the real problemResponse, is a valid problem for the contract, the OpenAPI document and the connector;
 * and the schemas reject answers that drift (so the integration tests that parse real answers can fail).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RETRY_AFTER_STATUSES } from '../../shared/contract/headers.js';
import { buildOpenApiDocument, PROBLEM_EXAMPLES, UPDATE_RESULT_EXAMPLE } from '../../shared/contract/openapi.js';
import {
  ERROR_CODES,
  errorCodesByStatus,
  healthReportSchema,
  problemSchema,
  updateResultSchema,
} from '../../shared/contract/responses.js';
import { AdapterError, ERROR_DEFINITIONS, type ErrorCode, type ProblemExtensions } from '../../shared/core/errors.js';
import { problemResponse } from '../../shared/http/response.js';
import { openApi31Check, pointer, swagger20Check } from '../support/documents.js';
import { REPO_ROOT } from '../support/stack.js';

const document = buildOpenApiDocument();
const check31 = openApi31Check(document);
const connector = JSON.parse(readFileSync(`${REPO_ROOT}connector/apiDefinition.swagger.json`, 'utf8'));
const check20 = swagger20Check(connector);
const QUEUED_PATH = '/referral-updates?async=true';

/** The first operation of the OpenAPI document whose answer with this status lists the code. */
function documentedAt(code: ErrorCode, status: number): [string, string] {
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const schema = operation?.responses?.[String(status)]?.content?.['application/problem+json']?.schema as
        | { allOf?: Array<{ properties?: { code?: { enum?: string[] } } }> }
        | undefined;
      if (schema?.allOf?.[1]?.properties?.code?.enum?.includes(code)) return [path, method];
    }
  }
  throw new Error(`${code} (${status}) is documented on no operation`);
}

/** Extensions a real error of each code carries (see where the code throws it). */
const EXTENSIONS: Partial<Record<ErrorCode, ProblemExtensions>> = {
  invalid_event: {
    errors: [{ pointer: '/dealValue', field: 'dealValue', code: 'invalid_type', message: 'Expected number' }],
    referralId: 'r-1',
  },
  referral_not_found: { referralId: 'r-1', upstream: { status: 404 } },
  transition_not_allowed: {
    referralId: 'r-1',
    current: { status: 'Active', substatus: 'Accepted' },
    requested: { status: 'New', substatus: 'Pending' },
    allowedTargets: [{ status: 'Closed', substatus: 'Won' }],
  },
  referral_closed: { referralId: 'r-1', current: { status: 'Closed', substatus: 'Won' } },
  upstream_rejected: { referralId: 'r-1', upstream: { status: 400, code: 'invalidRequest', message: 'bad' } },
  upstream_error: { referralId: 'r-1', upstream: { status: 500 } },
  configuration_invalid: { problems: ['UPSTREAM_MAX_RETRIES must be an integer from 0 to 10'] },
  in_progress: { referralId: 'r-1' },
  conflict: { referralId: 'r-1' },
};

describe('every code of the catalogue, as problemResponse writes it', () => {
  it.each(ERROR_CODES)('%s', (code) => {
    const retryAfterSeconds = ERROR_DEFINITIONS[code].retryable ? 7 : undefined;
    const extensions = EXTENSIONS[code] ?? {};
    const response = problemResponse(
      new AdapterError(code, 'what happened', { extensions, ...(retryAfterSeconds ? { retryAfterSeconds } : {}) }),
      '0f8fad5b-d9cb-469f-a165-70867728950e',
    );
    const status = String(response.status);
    const headers = response.headers as Record<string, string>;
    const body = JSON.parse(String(response.body));
    expect(problemSchema.safeParse(body).error?.issues ?? []).toEqual([]);
    expect(headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(headers['MS-CorrelationId']).toBe('0f8fad5b-d9cb-469f-a165-70867728950e');
    expect('retry-after' in headers).toBe(
      retryAfterSeconds !== undefined && RETRY_AFTER_STATUSES.includes(response.status ?? 0),
    );
    // The POST documents its codes; the codes of the status URL and of the operations on events, those.
    const [path, method] = documentedAt(code, response.status ?? 0);
    const at = pointer('paths', path, method, 'responses', status);
    expect(check31(`${at}/content/application~1problem+json/schema`, body)).toEqual([]);
    // The connector's actions: the synchronous one, or the queued one (which adds the status URL's 424).
    const action = connector.paths['/referral-updates'].post.responses[status] ? '/referral-updates' : QUEUED_PATH;
    expect(check20(`${pointer('paths', action, 'post', 'responses', status)}/schema`, body)).toEqual([]);
    expect(errorCodesByStatus().get(response.status ?? 0)).toContain(code);
  });
});

describe('the schemas reject drift', () => {
  it('a problem whose status, retryable, title or type disagrees with the catalogue', () => {
    const good = PROBLEM_EXAMPLES.transition_not_allowed;
    expect(problemSchema.safeParse(good).success).toBe(true);
    for (const change of [{ status: 409 }, { retryable: true }, { title: 'Other' }, { type: 'urn:x' }]) {
      expect(problemSchema.safeParse({ ...good, ...change }).success, JSON.stringify(change)).toBe(false);
    }
  });

  it('an undocumented field, an unknown code, a missing member', () => {
    const good = PROBLEM_EXAMPLES.transition_not_allowed;
    expect(problemSchema.safeParse({ ...good, stack: 'Error: …' }).success).toBe(false);
    expect(problemSchema.safeParse({ ...good, code: 'teapot' }).success).toBe(false);
    const { detail: _detail, ...withoutDetail } = good;
    expect(problemSchema.safeParse(withoutDetail).success).toBe(false);
    expect(updateResultSchema.safeParse({ ...UPDATE_RESULT_EXAMPLE, outcome: 'skipped' }).success).toBe(false);
    expect(updateResultSchema.safeParse({ ...UPDATE_RESULT_EXAMPLE, debug: true }).success).toBe(false);
    const { changes: _changes, ...withoutChanges } = UPDATE_RESULT_EXAMPLE;
    expect(updateResultSchema.safeParse(withoutChanges).success).toBe(false);
    expect(healthReportSchema.safeParse({ status: 'ok' }).success).toBe(false);
  });

  it('the published documents reject them too', () => {
    const at = pointer('paths', '/referral-updates', 'post', 'responses', '200');
    expect(check31(`${at}/content/application~1json/schema`, { ...UPDATE_RESULT_EXAMPLE, debug: true })).not.toEqual(
      [],
    );
    expect(check20(`${at}/schema`, { ...UPDATE_RESULT_EXAMPLE, status: 3 })).not.toEqual([]);
    expect(check20(`${at}/schema`, { ...UPDATE_RESULT_EXAMPLE, status: null, substatus: null, eTag: null })).toEqual(
      [],
    );
  });
});
