/**
 * JSON Patch (RFC 6902) limited to what the PATCH page supports: "The API
 * currently only supports the replace and add operations" (docs/partner-center-api.md#patch-json-patch).
 * Paths are JSON Pointers (RFC 6901).
 */
import { deepClone, isPlainObject, setOwn } from './json.js';

export type PatchResult = { ok: true; doc: Record<string, unknown> } | { ok: false; message: string };

type Container = Record<string, unknown> | unknown[];

function parsePointer(path: string): string[] | undefined {
  if (path === '') return [];
  if (!path.startsWith('/')) return undefined;
  return path
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function arrayIndex(token: string, length: number, allowEnd: boolean): number | undefined {
  if (allowEnd && token === '-') return length;
  if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
  const index = Number(token);
  return index < length || (allowEnd && index === length) ? index : undefined;
}

function child(container: unknown, token: string): unknown {
  if (Array.isArray(container)) {
    const index = arrayIndex(token, container.length, false);
    return index === undefined ? undefined : container[index];
  }
  return isPlainObject(container) && Object.hasOwn(container, token) ? container[token] : undefined;
}

function applyOne(doc: Record<string, unknown>, op: unknown, position: number): PatchResult {
  const where = `operation ${position}`;
  if (!isPlainObject(op)) return { ok: false, message: `${where} is not an object.` };
  const { op: name, path, value } = op;
  if (name !== 'replace' && name !== 'add') {
    return { ok: false, message: `${where}: op ${JSON.stringify(name)} is not supported; only replace and add are.` };
  }
  if (typeof path !== 'string') return { ok: false, message: `${where}: path must be a string.` };
  if (!Object.hasOwn(op, 'value')) return { ok: false, message: `${where}: ${name} needs a value.` };
  const tokens = parsePointer(path);
  if (tokens === undefined)
    return { ok: false, message: `${where}: path ${JSON.stringify(path)} is not a JSON Pointer.` };

  const last = tokens.pop();
  if (last === undefined) {
    // The whole document is the target.
    return isPlainObject(value)
      ? { ok: true, doc: deepClone(value) }
      : { ok: false, message: `${where}: the document must stay an object.` };
  }
  let parent: unknown = doc;
  for (const token of tokens) parent = child(parent, token);
  if (!Array.isArray(parent) && !isPlainObject(parent)) {
    return { ok: false, message: `${where}: path ${JSON.stringify(path)} does not exist.` };
  }
  const container: Container = parent;
  const copy = deepClone(value);
  if (Array.isArray(container)) {
    const index = arrayIndex(last, container.length, name === 'add');
    if (index === undefined) return { ok: false, message: `${where}: index ${JSON.stringify(last)} is out of range.` };
    if (name === 'add') container.splice(index, 0, copy);
    else container[index] = copy;
  } else {
    if (name === 'replace' && !Object.hasOwn(container, last)) {
      return {
        ok: false,
        message: `${where}: path ${JSON.stringify(path)} does not exist; replace needs an existing value.`,
      };
    }
    setOwn(container, last, copy);
  }
  return { ok: true, doc };
}

/** Applies `operations` to a copy of `doc`; the original is never modified. */
export function applyJsonPatch(doc: Record<string, unknown>, operations: unknown): PatchResult {
  if (!Array.isArray(operations)) {
    return { ok: false, message: 'The PATCH body must be a JSON Patch array of operations (RFC 6902).' };
  }
  let current = deepClone(doc);
  for (const [i, op] of operations.entries()) {
    const result = applyOne(current, op, i);
    if (!result.ok) return result;
    current = result.doc;
  }
  return { ok: true, doc: current };
}
