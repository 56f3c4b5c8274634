/**
 * Ajv validators over the published documents, so tests check values against what the documents say
 * (not only against the zod schemas they were generated from): the OpenAPI 3.1 document (JSON Schema
 * 2020-12) and the connector's OpenAPI 2.0 definitions (read with `x-nullable` as a null type).
 */
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';

type Json = { [key: string]: unknown };

export interface ValueValidator {
  (value: unknown): boolean;
  errors?: unknown[] | null;
}

/** Escapes path segments into a JSON pointer: pointer('paths', '/referral-updates') → '/paths/~1referral-updates'. */
export const pointer = (...segments: string[]) =>
  segments.map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

/** The errors of `value` against the schema at `at` (a JSON pointer into the document); [] when valid. */
export type Check = (at: string, value: unknown) => unknown[];

function checker(ajv: Ajv | Ajv2020, id: string): Check {
  const cache = new Map<string, ValueValidator>();
  return (at, value) => {
    let validate = cache.get(at);
    if (!validate) {
      validate = ajv.compile({ $ref: `${id}#${at}` }) as ValueValidator;
      cache.set(at, validate);
    }
    validate(value);
    return validate.errors ?? [];
  };
}

const OPTIONS = { strict: false, allErrors: true, validateFormats: false, validateSchema: false } as const;

/** Checks against the schemas of an OpenAPI 3.1 document (components and the schemas under paths). */
export function openApi31Check(document: object): Check {
  const id = 'https://documents.invalid/openapi.json';
  const ajv = new Ajv2020(OPTIONS);
  const { components, paths } = document as Json;
  ajv.addSchema({ $id: id, components, paths });
  return checker(ajv, id);
}

/** OpenAPI 2.0 has no null type; `x-nullable: true` (what the connector uses) means "or null". */
function withNullable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withNullable);
  if (!value || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [key, member] of Object.entries(value)) out[key] = withNullable(member);
  if (out['x-nullable'] === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  return out;
}

/** Checks against the schemas of an OpenAPI 2.0 document (definitions and the schemas under paths). */
export function swagger20Check(document: object): Check {
  const id = 'https://documents.invalid/swagger.json';
  const ajv = new Ajv(OPTIONS);
  const { definitions, paths } = withNullable(document) as Json;
  ajv.addSchema({ $id: id, definitions, paths });
  return checker(ajv, id);
}
