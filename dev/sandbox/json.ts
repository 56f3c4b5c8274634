/** Small JSON helpers shared by the sandbox modules. */

/** A referral as the sandbox stores it: any JSON object with a string `id`. */
export type StoredReferral = { id: string } & Record<string, unknown>;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepClone<T>(value: T): T {
  return structuredClone(value);
}

/** Structural equality for JSON values; strings are compared byte for byte. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonEqual(item, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]));
  }
  return false;
}

/**
 * Sets an own property without going through setters: a JSON key such as
 * `__proto__` must become data, never change the object's prototype.
 */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; message: string };

export function parseJson(text: string): JsonParseResult {
  if (text.trim() === '') return { ok: false, message: 'The request body is empty.' };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { ok: false, message: `The request body is not valid JSON: ${detail}` };
  }
}
