/**
 * Hostile request bodies for test/integration/fuzz.test.ts (fast-check arbitraries): wrong types, huge
 * strings, deep nesting, prototype-pollution keys, invalid UTF-8, odd numbers, casing games, many keys,
 * bodies around the size limit; and valid events (which a bad signature must refuse all the same).
 */
import fc, { type JsonValue } from 'fast-check';
import { SEED_IDS } from '../../../dev/sandbox/seed.js';
import { VALID_PAIRS } from '../documented-transitions.js';

/** The app's default MAX_BODY_BYTES (README, Configuration). */
export const MAX_BODY_BYTES = 65_536;
/** The documented (status, substatus) pairs, split. */
const PAIRS = VALID_PAIRS.map((pair) => pair.split('/') as [string, string]);
const STATUSES = [...new Set(PAIRS.map(([status]) => status))];
const SUBSTATUSES = [...new Set(PAIRS.map(([, substatus]) => substatus))];
const SEEDS = Object.values(SEED_IDS);
/** A seeded referral's id. */
export const SEED = SEED_IDS.newPending;

export type Bytes = Uint8Array<ArrayBuffer>;
const encoder = new TextEncoder();
export const decoder = new TextDecoder();
export const utf8 = (text: string): Bytes => encoder.encode(text);

export function bytesOf(...parts: Array<string | readonly number[] | Uint8Array>): Bytes {
  const chunks = parts.map((part) => (typeof part === 'string' ? utf8(part) : Uint8Array.from(part)));
  const out = new Uint8Array(chunks.reduce((size, chunk) => size + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Whether the bytes are UTF-8 that decodes and re-encodes to themselves (no invalid sequence, no BOM). */
export function roundTrips(bytes: Bytes): boolean {
  return Buffer.from(decoder.decode(bytes), 'utf8').equals(Buffer.from(bytes));
}

// ---------------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------------

/** A request body and what it is; printed short in counterexamples (a 64 KiB array helps nobody). */
export interface Payload {
  kind: string;
  bytes: Bytes;
  [fc.toStringMethod]: () => string;
}

export function payload(kind: string, bytes: Bytes): Payload {
  return {
    kind,
    bytes,
    [fc.toStringMethod]: () => {
      // Printable ASCII as is, every other byte as \xNN: the exact bytes, short.
      const head = Array.from(bytes.subarray(0, 200), (byte) =>
        byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`,
      ).join('');
      return `${kind} (${bytes.length} bytes): ${head}${bytes.length > 200 ? '…' : ''}`;
    },
  };
}

export const text = (kind: string, body: string) => payload(kind, utf8(body));
const member = (key: string, rawValue: string) => `${JSON.stringify(key)}:${rawValue}`;
const objectOf = (members: readonly string[]) => `{${members.join(',')}}`;

const seedId = fc.constantFrom(...SEEDS);
export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A string of `length` code units: one repeated character or random printable ASCII. */
const longString = (min: number, max: number) =>
  fc.integer({ min, max }).chain((length) =>
    fc.oneof(
      fc.constantFrom('x', 'é', '\u0000', '"', '\\').map((c) => c.repeat(length)),
      fc.string({ unit: 'grapheme-ascii', minLength: length, maxLength: length }),
    ),
  );

/** JSON values of another type than a string; not `null`, which an optional field takes as "not given". */
const nonString: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
);

/** Strings no casing of which is one of `words`, including near misses that only look right. */
function notAnyCasingOf(words: readonly string[]): fc.Arbitrary<string> {
  const nearMisses = words.flatMap((word) => [
    ` ${word}`,
    `${word} `,
    `${word}\u0000`,
    `${word}\u200b`,
    `\ufeff${word}`,
    `${word}s`,
    word.slice(0, -1),
    word.replace(/i/, 'İ').replace(/I/, 'İ'),
    word.replace(/s/, 'ſ'),
    // Fullwidth first letter (Ａ…Ｚ).
    String.fromCharCode((word.codePointAt(0) ?? 65) + 0xfee0) + word.slice(1),
    word.toUpperCase().split('').join(' '),
  ]);
  const lowerCase = new Set(words.map((word) => word.toLowerCase()));
  return fc
    .oneof(fc.constantFrom(...nearMisses), fc.string({ unit: 'binary', maxLength: 12 }), fc.mixedCase(fc.string()))
    .filter((candidate) => !lowerCase.has(candidate.toLowerCase()));
}

/** referralId values that must never reach a URL: traversal, encoding tricks, separators, control chars, size. */
const hostileReferralId: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    '.',
    '..',
    '../',
    '../../../etc/passwd',
    '..%2f..%2f',
    '%2e%2e',
    '%2e%2e%2f',
    '%2E%2E/%2E%2E',
    '%252e%252e',
    '/',
    '//',
    'a/b',
    '/v1.0/engagements/referrals',
    'a?b',
    '?dryRun=true',
    'a#b',
    '#',
    '..\\..\\',
    'a\\b',
    ' ',
    '\t',
    'a b',
    '\u0000',
    'a\u0000',
    'a\n',
    '\r\nHost: evil.example',
    '\u202e',
    'ä',
    '𝒜',
    '\ud800',
    '\udfff',
    '\ufeff',
    'Ａ',
    'a'.repeat(129),
  ),
  fc
    .tuple(
      seedId,
      fc.constantFrom('/', '/..', '/../x', '?x=1', '#f', '%2F', '%2e%2e', '\n', ' ', '\u0000', '\ud800', '/'),
    )
    .map(([id, suffix]) => id + suffix),
  fc.tuple(fc.constantFrom('../', '%2e%2e/', '..\\', '/', ' ', '\\'), seedId).map(([prefix, id]) => prefix + id),
  fc
    .string({ unit: 'binary', minLength: 1, maxLength: 200 })
    .filter((id) => id.length > 128 || /[^A-Za-z0-9._-]/.test(id)),
  fc.integer({ min: 129, max: 10_240 }).map((length) => 'a'.repeat(length)),
  fc.string({ unit: 'binary', minLength: 10_000, maxLength: 10_240 }),
);

const badDate: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '2026-02-30',
    '2026-13-01',
    '2026-00-10',
    '2026-12-32',
    '2026-12-31T00:00:00',
    '2026-12-31T25:00:00Z',
    '2026-12-31T00:00:00+25:00',
    '31/12/2026',
    '12/31/2026',
    '2026/12/31',
    '2026-1-1',
    '0000-00-00',
    '9999-99-99',
    ' 2026-12-31',
    '2026-12-31 ',
    '2026-12-31\n',
    'yesterday',
    'NaN',
    'Infinity',
    '1e309',
    '２０２６-１２-３１',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }).filter((value) => !/\d/.test(value)),
);

type ContractKey =
  | 'referralId'
  | 'eventId'
  | 'status'
  | 'substatus'
  | 'statusReason'
  | 'dealValue'
  | 'currency'
  | 'closingDate'
  | 'notes'
  | 'name'
  | 'externalReferenceId'
  | 'occurredAt'
  | 'dryRun'
  | 'stage';

/**
 * For each contract field, values it must refuse: the wrong JSON type, or the right type out of bounds. `null` only
 * for the referral id: for every other field it means "not given" (README, contract).
 */
const WRONG: Record<ContractKey, fc.Arbitrary<JsonValue>> = {
  referralId: fc.oneof(nonString, fc.constant(null), hostileReferralId),
  eventId: fc.oneof(nonString, fc.constant(''), longString(257, 2000)),
  status: fc.oneof(nonString, notAnyCasingOf(STATUSES)),
  substatus: fc.oneof(nonString, notAnyCasingOf(SUBSTATUSES)),
  statusReason: fc.oneof(nonString, longString(4001, 6000)),
  dealValue: fc.oneof(
    fc.string(),
    fc.constantFrom('125000', '1e3', 'NaN', 'Infinity', '-0', '0x10', ''),
    fc.boolean(),
    fc.array(fc.integer(), { maxLength: 3 }),
    fc.dictionary(fc.string(), fc.integer(), { maxKeys: 2 }),
    fc.integer({ max: -1 }),
    fc.double({ max: -Number.MIN_VALUE, noNaN: true, noDefaultInfinity: true }),
  ),
  currency: fc.oneof(
    nonString,
    fc.string({ unit: 'binary', maxLength: 8 }).filter((c) => !/^[A-Za-z]{3}$/.test(c)),
  ),
  closingDate: fc.oneof(nonString, badDate),
  notes: fc.oneof(nonString, longString(32_001, 33_000)),
  name: fc.oneof(nonString, fc.constant(''), longString(513, 2000)),
  externalReferenceId: fc.oneof(nonString, longString(257, 2000)),
  occurredAt: fc.oneof(nonString, badDate),
  dryRun: fc.oneof(fc.string(), fc.constantFrom('true', 'false', 1, 0, ''), fc.array(fc.boolean(), { maxLength: 2 })),
  // Without STAGE_MAP any stage is refused; with one, these are still the wrong type or too long.
  stage: fc.oneof(nonString, longString(257, 2000)),
};
const CONTRACT_KEYS = Object.keys(WRONG) as ContractKey[];

/** The contract's keys with at least one wrong value, next to valid members (a real referral id included). */
const wrongTypes: fc.Arbitrary<Payload> = fc
  .tuple(
    fc.oneof(
      { weight: 3, arbitrary: fc.oneof(...CONTRACT_KEYS.map((key) => WRONG[key].map((value) => ({ [key]: value })))) },
      {
        weight: 1,
        arbitrary: fc.record(WRONG, { requiredKeys: [] }).filter((wrong) => Object.keys(wrong).length > 0),
      },
    ),
    fc.record(
      {
        referralId: seedId,
        notes: fc.string({ maxLength: 20 }),
        status: fc.constantFrom('Active', 'active', 'ACTIVE'),
        dealValue: fc.nat(),
        currency: fc.constantFrom('EUR', 'usd'),
      },
      { requiredKeys: [] },
    ),
    fc.boolean(),
  )
  .map(([wrong, valid, wrongFirst]) => {
    const wrongMembers = Object.entries(wrong).map(([key, value]) => member(key, JSON.stringify(value)));
    const validMembers = Object.entries(valid)
      .filter(([key]) => !Object.hasOwn(wrong, key))
      .map(([key, value]) => member(key, JSON.stringify(value)));
    const members = wrongFirst ? [...wrongMembers, ...validMembers] : [...validMembers, ...wrongMembers];
    return text(`wrong types: ${Object.keys(wrong).join(', ')}`, objectOf(members));
  });

/** A hostile referralId in an otherwise valid event, also written with JSON escapes. */
const badReferral: fc.Arbitrary<Payload> = fc
  .tuple(
    fc.oneof(
      hostileReferralId.map((id) => JSON.stringify(id)),
      fc.constantFrom(
        '"\\u002e\\u002e"',
        '"..\\/..\\/x"',
        '"\\u0000"',
        `"${SEED}\\u002f.."`,
        `"${SEED}\\n"`,
        `"\\ud83d${SEED}"`,
      ),
    ),
    fc.constantFrom('"notes":"x"', '"status":"Active"', '"substatus":"won","dealValue":1', '"dryRun":true,"notes":"y"'),
  )
  .map(([rawId, rest]) => text('hostile referralId', `{"referralId":${rawId},${rest}}`));

const POLLUTION_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  '__defineGetter__',
  '__lookupGetter__',
  'hasOwnProperty',
  'toString',
  'valueOf',
  'isPrototypeOf',
  'toJSON',
];

/** Prototype-pollution keys as real own keys (JSON text), with values that would make a valid event if merged. */
const pollution: fc.Arbitrary<Payload> = fc
  .tuple(
    fc.array(
      fc.tuple(
        fc.constantFrom(...POLLUTION_KEYS),
        fc.oneof(
          fc.constant('{"polluted":1}'),
          seedId.map((id) => `{"referralId":"${id}","status":"Active","notes":"polluted"}`),
          fc.constant('{"prototype":{"polluted":1,"status":"Active"}}'),
          fc.constant('{"__proto__":{"polluted":1,"notes":"p"}}'),
          fc.constantFrom('null', '1', '"x"', '[]', 'true', '{"toString":1,"valueOf":"x"}'),
        ),
      ),
      { minLength: 1, maxLength: 3 },
    ),
    fc.subarray([`"referralId":"${SEED}"`, '"notes":"y"', '"status":"Active"', '"referralId":"x"']),
    fc.boolean(),
  )
  .map(([keys, valid, pollutionFirst]) => {
    const hostile = keys.map(([key, value]) => member(key, value));
    return text(
      `pollution: ${keys.map(([key]) => key).join(', ')}`,
      objectOf(pollutionFirst ? [...hostile, ...valid] : [...valid, ...hostile]),
    );
  });

/** Nested pollution inside a contract field: the field has the wrong type whatever the parser makes of it. */
const nestedPollution: fc.Arbitrary<Payload> = fc
  .tuple(fc.constantFrom('notes', 'status', 'dealValue', 'referralId'), fc.constantFrom(...POLLUTION_KEYS))
  .map(([field, key]) =>
    text(
      'nested pollution',
      `{"referralId":"${SEED}",${member(field, `{${member(key, '{"polluted":1,"referralId":"x"}')}}`)}}`,
    ),
  );

/** 1,000 to 5,000 levels of nesting, balanced or not, alone or inside a field. */
const deepNesting: fc.Arbitrary<Payload> = fc
  .tuple(
    fc.integer({ min: 1000, max: 5000 }),
    fc.constantFrom('array', 'object', 'proto', 'in-field', 'mixed', 'unbalanced-array', 'unbalanced-object'),
  )
  .map(([depth, shape]) => {
    const body = (() => {
      switch (shape) {
        case 'array':
          return '['.repeat(depth) + ']'.repeat(depth);
        case 'object':
          return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
        case 'proto':
          return `${'{"__proto__":'.repeat(depth)}{}${'}'.repeat(depth)}`;
        case 'in-field':
          return `{"referralId":"${SEED}","notes":${'['.repeat(depth)}"x"${']'.repeat(depth)}}`;
        case 'mixed':
          return `${'[{"a":'.repeat(depth)}null${'}]'.repeat(depth)}`;
        case 'unbalanced-array':
          return '['.repeat(depth);
        default:
          return '{"a":'.repeat(depth);
      }
    })();
    return text(`nesting ${shape} ×${depth}`, body);
  });

/** Shorthand games with a real referral: any casing of a status with a substatus of another, Closed alone, key casing. */
const casingGames: fc.Arbitrary<Payload> = (() => {
  const casing = (word: string) => fc.mixedCase(fc.constant(word));
  const mismatched = STATUSES.flatMap((status) =>
    SUBSTATUSES.filter((sub) => !PAIRS.some((pair) => pair[0] === status && pair[1] === sub)).map(
      (sub) => [status, sub] as const,
    ),
  );
  return fc
    .oneof(
      fc.record({ referralId: seedId, status: casing('Closed') }),
      fc
        .constantFrom(...mismatched)
        .chain(([status, sub]) => fc.record({ referralId: seedId, status: casing(status), substatus: casing(sub) })),
      fc.record({ referralId: seedId, status: notAnyCasingOf(STATUSES) }),
      fc.record({ referralId: seedId, substatus: notAnyCasingOf(SUBSTATUSES) }),
      fc
        .tuple(
          seedId,
          fc.oneof(casing('status'), casing('substatus'), fc.constantFrom('substaus', 'Status ', 'referralID')),
          casing('Won'),
        )
        .filter(([, key]) => key !== 'status' && key !== 'substatus')
        .map(([id, key, value]) => ({ referralId: id, [key]: value })),
    )
    .map((event) => text('casing games', JSON.stringify(event)));
})();

/** Number texts: out of range, negative, not JSON at all; and harmless ones (-0) next to an invalid member. */
const numbers: fc.Arbitrary<Payload> = fc.oneof(
  fc
    .tuple(
      seedId,
      fc.constantFrom(
        '1e309',
        '-1e309',
        '1E+309',
        '9'.repeat(400),
        '-1',
        '-1e-300',
        '-0.5',
        'NaN',
        '-NaN',
        'Infinity',
        '-Infinity',
        '0x10',
        '1.',
        '.5',
        '01',
        '+1',
        '1e',
        '--1',
        '1_000',
        "'1'",
        '１',
      ),
    )
    .map(([id, number]) => text(`dealValue ${number.slice(0, 12)}`, `{"referralId":"${id}","dealValue":${number}}`)),
  fc
    .tuple(
      fc.constantFrom('-0', '-0.0', '0e0', '1e-400', '-1e-400', '0.000', '1e308'),
      fc.constantFrom('"referralId":"../x"', '"referralId":1', '"dryRun":"no"', '"extra":1', '"referralId":null'),
    )
    .map(([number, invalid]) => text(`harmless ${number} + invalid`, `{"dealValue":${number},${invalid}}`)),
);

/** Byte sequences that are not UTF-8: a bad continuation, stray bytes, overlong forms, CESU-8 surrogates, > U+10FFFF. */
const BAD_UTF8: ReadonlyArray<readonly number[]> = [
  [0xc3, 0x28],
  [0xff],
  [0xfe, 0xff],
  [0x80],
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xed, 0xa0, 0xbd, 0xed, 0xb2, 0xa9],
  [0xf4, 0x90, 0x80, 0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];

/** Invalid UTF-8 in events that are invalid anyway (the otherwise-valid case is a test of its own below). */
const invalidUtf8: fc.Arbitrary<Payload> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(...BAD_UTF8),
      fc.constantFrom('referralId', 'key', 'between', 'status', 'currency', 'notes-no-id', 'top'),
    )
    .map(([bad, where]) => {
      const bytes = (() => {
        switch (where) {
          case 'referralId':
            return bytesOf('{"referralId":"a', bad, '","notes":"x"}');
          case 'key':
            return bytesOf(`{"referralId":"${SEED}","notes":"x","`, bad, '":1}');
          case 'between':
            return bytesOf(`{"referralId":"${SEED}",`, bad, '"notes":"x"}');
          case 'status':
            return bytesOf(`{"referralId":"${SEED}","status":"Act`, bad, 'ive"}');
          case 'currency':
            return bytesOf(`{"referralId":"${SEED}","currency":"E`, bad, '"}');
          case 'notes-no-id':
            return bytesOf('{"notes":"', bad, '"}');
          default:
            return bytesOf(bad, '{}');
        }
      })();
      return payload(`invalid UTF-8 in ${where}`, bytes);
    }),
  fc.uint8Array({ maxLength: 2048 }).map((bytes) => payload('random bytes', bytes)),
  fc
    .tuple(fc.constantFrom(...BAD_UTF8), fc.integer({ min: 1, max: 30_000 }))
    .map(([bad, count]) =>
      payload(`invalid UTF-8 ×${count}`, bytesOf('{"notes":"', Array.from({ length: count }, () => bad).flat(), '"}')),
    ),
);

/** Top-level non-objects, empty and near-JSON bodies, duplicate keys whose last value is invalid. */
const oddTopLevel: fc.Arbitrary<Payload> = fc
  .constantFrom(
    '',
    ' ',
    '\n',
    'null',
    'true',
    'false',
    '0',
    '-0',
    '42',
    '1e309',
    '"x"',
    '""',
    '[]',
    '[{}]',
    `[{"referralId":"${SEED}","notes":"x"}]`,
    '{}',
    `{"referralId":"${SEED}"}`,
    ' {} ',
    '\ufeff{}',
    '{',
    '}',
    '{"referralId":"x",}',
    "{'referralId':'x','notes':'y'}",
    `{"referralId":"${SEED}","notes":"y"}garbage`,
    `{"referralId":"${SEED}","notes":"y"}{"b":2}`,
    `{"referralId":"${SEED}","notes":"y"`,
    'NaN',
    'undefined',
    `//x\n{"referralId":"${SEED}","notes":"y"}`,
    `{"referralId":"${SEED}","notes":"x","notes":1}`,
    `{"referralId":"${SEED}","referralId":"../x","notes":"y"}`,
    `{"referralId":"${SEED}","status":"Active","status":"Bogus"}`,
  )
  .map((body) => text('odd top level', body));

const jsonValues: fc.Arbitrary<Payload> = fc
  .jsonValue({ maxDepth: 4 })
  .filter((value) => !(isObject(value) && Object.hasOwn(value, 'referralId')))
  .map((value) => text('jsonValue', JSON.stringify(value)));

const anythings: fc.Arbitrary<Payload> = fc
  .anything({
    maxDepth: 4,
    stringUnit: 'binary',
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withNullPrototype: true,
    withSet: true,
    withSparseArray: true,
    withTypedArray: true,
  })
  .map((value) => {
    let body: string | undefined;
    try {
      body = JSON.stringify(value);
    } catch {
      body = undefined;
    }
    return text('anything', body ?? 'undefined');
  })
  .filter((p) => {
    try {
      const parsed: unknown = JSON.parse(decoder.decode(p.bytes));
      return !(isObject(parsed) && Object.hasOwn(parsed, 'referralId'));
    } catch {
      return true;
    }
  });

/** Many unknown keys (plain, near misses of contract keys, long), or one giant key: every one is refused by name. */
const manyKeys: fc.Arbitrary<Payload> = fc
  .tuple(
    fc.integer({ min: 100, max: 5000 }),
    fc.constantFrom('plain', 'near miss', 'long', 'giant'),
    fc.constantFrom(...CONTRACT_KEYS),
    fc.boolean(),
  )
  .map(([count, style, near, withValid]) => {
    const keyAt = (i: number) => {
      switch (style) {
        case 'plain':
          return `k${i}`;
        case 'near miss':
          return `${near.slice(0, -1)}${i}`;
        default:
          return `${'k'.repeat(45)}${i}`;
      }
    };
    const members =
      style === 'giant'
        ? [member('g'.repeat(count * 12), '1')]
        : Array.from({ length: count }, (_, i) => member(keyAt(i), String(i)));
    const valid = withValid ? [`"referralId":"${SEED}"`, '"notes":"x"'] : [];
    return text(`${count} keys ${style}`, objectOf([...valid, ...members]));
  });

/** Every family of invalid body. None of them is a valid event, so none may get a 200 or reach upstream. */
export const hostileBody: fc.Arbitrary<Payload> = fc.oneof(
  { weight: 2, arbitrary: jsonValues },
  { weight: 2, arbitrary: anythings },
  { weight: 4, arbitrary: wrongTypes },
  { weight: 2, arbitrary: badReferral },
  { weight: 2, arbitrary: pollution },
  { weight: 1, arbitrary: nestedPollution },
  { weight: 1, arbitrary: deepNesting },
  { weight: 2, arbitrary: casingGames },
  { weight: 1, arbitrary: numbers },
  { weight: 2, arbitrary: invalidUtf8 },
  { weight: 1, arbitrary: oddTopLevel },
  { weight: 1, arbitrary: manyKeys },
);

/**
 * Bodies around and above the 64 KiB limit: one long string (1- to 4-byte characters) in some field, and
 * always a wrong-typed `dryRun`, so the event is invalid whatever the length. Padded to an exact byte size.
 */
export const sizedBody: fc.Arbitrary<Payload> = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1, MAX_BODY_BYTES + 4),
      fc.integer({ min: MAX_BODY_BYTES - 2000, max: MAX_BODY_BYTES + 2000 }),
      fc.integer({ min: MAX_BODY_BYTES + 1, max: 4 * MAX_BODY_BYTES }),
    ),
    fc.constantFrom('x', 'é', '€', '𝒜'),
    fc.constantFrom('notes', 'statusReason', 'name', 'externalReferenceId', 'referralId', 'unknownField'),
  )
  .map(([size, char, field]) => {
    const head = `{"referralId":"${SEED}","dryRun":"yes",${JSON.stringify(field)}:"`;
    const tail = '"}';
    const room = size - Buffer.byteLength(head + tail);
    const charBytes = Buffer.byteLength(char);
    const count = Math.max(0, Math.floor(room / charBytes));
    const padding = ' '.repeat(Math.max(0, room - count * charBytes));
    const body = `${head}${char.repeat(count)}${tail}${padding}`;
    return text(`sized ${field} ${char} ×${count}`, body);
  });

/** Valid events: under a bad signature they must be refused all the same. */
export const validEvent: fc.Arbitrary<Payload> = fc
  .tuple(
    seedId,
    fc.constantFrom<Record<string, unknown>>(
      { status: 'Active' },
      { notes: 'signed?' },
      { substatus: 'Won', dealValue: 1 },
      { dryRun: true, notes: 'x' },
    ),
  )
  .map(([referralId, change]) => text('valid event', JSON.stringify({ referralId, ...change })));
