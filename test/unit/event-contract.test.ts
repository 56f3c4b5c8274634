import { describe, expect, it } from 'vitest';
import { eventIdFromHeaders, parseUpdateEvent, toUtcDateTime } from '../../shared/contract/update-event.js';
import { AdapterError } from '../../shared/core/errors.js';
import { parseStageMap, presetStageMap, type StageMap } from '../../shared/core/stages.js';

const id = '3d5a1c52-0d55-4f6c-9a47-3c35b8f1e0a1';

function invalid(body: unknown, envelope = {}): AdapterError {
  try {
    parseUpdateEvent(body, envelope);
  } catch (error) {
    expect(error).toBeInstanceOf(AdapterError);
    return error as AdapterError;
  }
  throw new Error('expected invalid_event');
}

describe('parseUpdateEvent: accepted events', () => {
  it('maps every contract field to its Partner Center value', () => {
    const event = parseUpdateEvent({
      referralId: id,
      eventId: 'evt-1',
      status: 'closed',
      substatus: 'WON',
      statusReason: 'Signed',
      dealValue: 125000,
      currency: 'eur',
      closingDate: '2026-12-31',
      notes: 'n',
      name: 'Deal',
      externalReferenceId: 'crm-42',
    });
    expect(event).toEqual({
      referralId: id,
      eventId: 'evt-1',
      dryRun: false,
      intent: {
        status: 'Closed',
        substatus: 'Won',
        statusReason: 'Signed',
        dealValue: 125000,
        currency: 'EUR',
        closingDateTime: '2026-12-31T00:00:00Z',
        notes: 'n',
        name: 'Deal',
        externalReferenceId: 'crm-42',
      },
    });
  });

  it('implies the status of a substatus given alone', () => {
    expect(parseUpdateEvent({ referralId: id, substatus: 'lost' }).intent).toEqual({
      status: 'Closed',
      substatus: 'Lost',
    });
    expect(parseUpdateEvent({ referralId: id, substatus: 'Received' }).intent).toEqual({
      status: 'New',
      substatus: 'Received',
    });
  });

  it('implies Accepted for Active alone and leaves New alone without a substatus', () => {
    expect(parseUpdateEvent({ referralId: id, status: 'Active' }).intent).toEqual({
      status: 'Active',
      substatus: 'Accepted',
    });
    expect(parseUpdateEvent({ referralId: id, status: 'new' }).intent).toEqual({ status: 'New' });
  });

  it('converts a date-time with an offset to UTC', () => {
    const event = parseUpdateEvent({ referralId: id, closingDate: '2026-12-31T01:30:00+02:00' });
    expect(event.intent.closingDateTime).toBe('2026-12-30T23:30:00Z');
  });

  it('takes the event id from webhook-id, then Idempotency-Key, then the body', () => {
    const headers = (h: Record<string, string>) => new Headers(h);
    expect(eventIdFromHeaders(headers({ 'webhook-id': 'msg_1', 'idempotency-key': '"k"' }))).toBe('msg_1');
    expect(eventIdFromHeaders(headers({ 'idempotency-key': '"8e03978e"' }))).toBe('8e03978e');
    expect(eventIdFromHeaders(headers({ 'idempotency-key': 'bare' }))).toBe('bare');
    const event = parseUpdateEvent({ referralId: id, eventId: 'body', notes: 'x' }, { headerEventId: 'header' });
    expect(event.eventId).toBe('header');
    expect(parseUpdateEvent({ referralId: id, eventId: 'body', notes: 'x' }).eventId).toBe('body');
  });

  it('turns on dry run from the body or the query', () => {
    expect(parseUpdateEvent({ referralId: id, notes: 'x', dryRun: true }).dryRun).toBe(true);
    expect(parseUpdateEvent({ referralId: id, notes: 'x' }, { dryRunQuery: 'true' }).dryRun).toBe(true);
    expect(parseUpdateEvent({ referralId: id, notes: 'x' }, { dryRunQuery: 'false' }).dryRun).toBe(false);
  });
});

describe('parseUpdateEvent: rejected events', () => {
  it('rejects an unknown key, naming it and suggesting the right one', () => {
    const error = invalid({ referralId: id, substaus: 'Won' });
    expect(error.code).toBe('invalid_event');
    expect(error.status).toBe(400);
    expect(error.extensions.errors).toContainEqual(
      expect.objectContaining({ field: 'substaus', pointer: '/substaus', code: 'unrecognized_key' }),
    );
    const entry = error.extensions.errors?.find((e) => e.field === 'substaus');
    expect(entry?.message).toContain('Did you mean "substatus"');
  });

  it('returns one entry per bad field', () => {
    const error = invalid({
      referralId: id,
      status: 'Open',
      dealValue: -1,
      currency: 'EURO',
      closingDate: '31/12/2026',
    });
    expect(error.extensions.errors?.map((e) => e.field).sort()).toEqual([
      'closingDate',
      'currency',
      'dealValue',
      'status',
    ]);
    expect(error.extensions.referralId).toBeUndefined();
  });

  it.each([
    [{ referralId: id }, 'body', 'no_change'],
    [{ referralId: id, status: 'Closed' }, 'status', 'substatus_required'],
    [{ referralId: id, status: 'Active', substatus: 'Won' }, 'substatus', 'substatus_mismatch'],
    [{ referralId: id, dealValue: '125000' }, 'dealValue', 'invalid_type'],
    [{ referralId: id, currency: 'ZZZ' }, 'currency', 'custom'],
    [{ referralId: id, closingDate: '2026-02-30' }, 'closingDate', 'custom'],
    [{ referralId: id, closingDate: '2026-12-31T10:00:00' }, 'closingDate', 'custom'],
    [{ referralId: '../etc', notes: 'x' }, 'referralId', 'invalid_format'],
    [{ notes: 'x' }, 'referralId', 'invalid_type'],
    [{ referralId: id, status: 'None' }, 'status', 'invalid_value'],
    [{ referralId: id, notes: 'x', dryRun: 'yes' }, 'dryRun', 'invalid_type'],
    [{ referralId: id, name: '' }, 'name', 'too_small'],
  ])('%j → %s (%s)', (body, field, code) => {
    const error = invalid(body);
    expect(error.extensions.errors).toContainEqual(expect.objectContaining({ field, code }));
  });

  it('rejects bodies that are not objects', () => {
    for (const body of [null, [], 'x', 42]) {
      expect(invalid(body).extensions.errors).toEqual([
        expect.objectContaining({ field: 'body', code: 'invalid_type' }),
      ]);
    }
  });

  it('with signatures required, refuses any ?dryRun= query: the signed body alone says whether it is a dry run', () => {
    for (const dryRunQuery of ['true', 'false', '']) {
      const error = invalid({ referralId: id, notes: 'x' }, { dryRunQuery, signed: true });
      expect(error.extensions.errors).toEqual([expect.objectContaining({ field: 'dryRun', code: 'unsigned_query' })]);
    }
    expect(parseUpdateEvent({ referralId: id, notes: 'x', dryRun: true }, { signed: true }).dryRun).toBe(true);
  });

  it('rejects a bad dryRun query value alongside body errors', () => {
    const error = invalid({ referralId: id }, { dryRunQuery: 'maybe' });
    expect(error.extensions.errors?.map((e) => e.field)).toEqual(['dryRun', 'body']);
  });

  it('rejects an over-long event id header', () => {
    const error = invalid({ referralId: id, notes: 'x' }, { headerEventId: 'k'.repeat(257) });
    expect(error.extensions.errors).toEqual([expect.objectContaining({ field: 'eventId', code: 'too_big' })]);
  });

  it('never echoes the submitted values in messages', () => {
    const secretish = 'sue.smith@contoso.com';
    const error = invalid({ referralId: id, notes: secretish.repeat(2000), currency: secretish });
    expect(JSON.stringify(error.extensions)).not.toContain(secretish);
  });
});

describe('toUtcDateTime', () => {
  it.each([
    ['2026-12-31', '2026-12-31T00:00:00Z'],
    ['2024-02-29', '2024-02-29T00:00:00Z'],
    ['2026-12-31T10:00:00Z', '2026-12-31T10:00:00Z'],
    ['2026-12-31T10:00:00.250-01:00', '2026-12-31T11:00:00.250Z'],
  ])('%s → %s', (input, expected) => {
    expect(toUtcDateTime(input)).toBe(expected);
  });

  it.each(['2025-02-29', '2026-13-01', '2026-12-31T25:00:00Z', 'tomorrow', ''])('rejects %s', (input) => {
    expect(toUtcDateTime(input)).toBeUndefined();
  });
});

describe('accepted input is written exactly (issue #11, item 4)', () => {
  it.each([
    ['9999-12-31T23:59:59-01:00', 'its UTC form is in year 10000'],
    ['0000-01-01T00:30:00+01:00', 'its UTC form is in year -1'],
    ['0050-06-01', 'a year before 1900'],
    ['0050-06-01T00:00:00Z', 'a year before 1900, as a date-time'],
    ['1899-12-31T23:59:59Z', 'the second before the window'],
    ['1900-01-01T00:30:00+01:00', 'before the window once in UTC'],
    ['2026-12-31T10:00:00.12345678Z', 'more fractional digits than Partner Center keeps'],
  ])('closingDate %s is a 400 naming closingDate (%s)', (closingDate) => {
    const error = invalid({ referralId: id, closingDate });
    expect(error.extensions.errors).toEqual([
      expect.objectContaining({ field: 'closingDate', pointer: '/closingDate' }),
    ]);
  });

  it.each([
    ['1900-01-01', '1900-01-01T00:00:00Z'],
    ['9999-12-31', '9999-12-31T00:00:00Z'],
    ['9999-12-31T23:59:59+01:00', '9999-12-31T22:59:59Z'],
    ['1900-01-01T00:30:00-01:00', '1900-01-01T01:30:00Z'],
    ['2026-12-31T10:00:00.1234567+02:00', '2026-12-31T08:00:00.1234567Z'],
  ])('closingDate %s → %s', (closingDate, written) => {
    expect(parseUpdateEvent({ referralId: id, closingDate }).intent.closingDateTime).toBe(written);
  });

  it.each([
    ['9007199254740993', 'too_big'],
    ['1e308', 'too_big'],
    ['1e16', 'too_big'],
    ['1e-400', 'inexact_number'],
    ['0.1000000000000000055511151231257827', 'inexact_number'],
    ['12.34567', 'too_precise'],
  ])('dealValue %s is a 400 naming dealValue (%s)', (source, code) => {
    const error = invalid(JSON.parse(`{"referralId":"${id}","dealValue":${source}}`), {
      numberSource: (key: string) => (key === 'dealValue' ? source : undefined),
    });
    expect(error.extensions.errors).toEqual([expect.objectContaining({ field: 'dealValue', code })]);
  });

  it.each([
    ['125000', 125000],
    ['125000.50', 125000.5],
    ['1E3', 1000],
    ['0.0001', 0.0001],
    ['1e15', 1e15],
    ['-0', 0],
  ])('dealValue %s is written as %s', (source, value) => {
    const event = parseUpdateEvent(JSON.parse(`{"referralId":"${id}","dealValue":${source}}`), {
      numberSource: (key: string) => (key === 'dealValue' ? source : undefined),
    });
    expect(Object.is(event.intent.dealValue, value)).toBe(true);
  });

  it.each(['', '   '])('a blank event id header (%j) is a 400 naming eventId', (headerEventId) => {
    const error = invalid({ referralId: id, notes: 'x' }, { headerEventId });
    expect(error.extensions.errors).toEqual([expect.objectContaining({ field: 'eventId', code: 'too_small' })]);
  });

  it('a blank body eventId is a 400 like an empty one', () => {
    expect(invalid({ referralId: id, notes: 'x', eventId: ' \t ' }).extensions.errors).toEqual([
      expect.objectContaining({ field: 'eventId' }),
    ]);
  });

  it('reads a present but blank webhook-id or Idempotency-Key as a blank id, not as no id', () => {
    const headers = (h: Record<string, string>) => new Headers(h);
    expect(eventIdFromHeaders(headers({ 'webhook-id': '' }))).toBe('');
    expect(eventIdFromHeaders(headers({ 'idempotency-key': '""' }))).toBe('');
    expect(eventIdFromHeaders(headers({ 'idempotency-key': '"   "' }))).toBe('   ');
    expect(eventIdFromHeaders(headers({}))).toBeUndefined();
  });

  it.each(['ſek', 'ＥＵＲ', 'eu\u0307r', 'EU'])('currency %j is refused: ASCII letters only', (currency) => {
    expect(invalid({ referralId: id, currency }).extensions.errors).toEqual([
      expect.objectContaining({ field: 'currency' }),
    ]);
  });

  it('lists at most a few dozen unknown keys, says how many more, and escapes what it echoes', () => {
    const body: Record<string, unknown> = { referralId: id, notes: 'x', '\uDC00evil\u202E\u0007': 1 };
    for (let i = 0; i < 2756; i++) body[`unknown${i}`] = i;
    const error = invalid(body);
    const errors = error.extensions.errors ?? [];
    expect(errors.length).toBeLessThanOrEqual(30);
    expect(errors.at(-1)).toMatchObject({ field: 'body', code: 'too_many_errors' });
    expect(errors.at(-1)?.message).toContain(String(2757 - (errors.length - 1)));
    expect(error.message).toContain('2757 invalid fields');
    expect(error.message.length).toBeLessThan(1000);
    const echoed = JSON.stringify(error.extensions) + error.message;
    for (const raw of ['\uDC00', '\u202E', String.fromCharCode(7)]) expect(echoed).not.toContain(raw);
    expect(errors[0]?.field).toBe('\\u{DC00}evil\\u{202E}\\u{0007}');
  });

  it('never splits a character when it clips a long unknown key', () => {
    const key = `${'a'.repeat(60)}😀😀😀😀😀`;
    const error = invalid({ referralId: id, notes: 'x', [key]: 1 });
    const [entry] = error.extensions.errors ?? [];
    expect(entry?.field).toBe(`${'a'.repeat(60)}😀...`);
    expect(entry?.pointer).toBe(`/${'a'.repeat(60)}😀...`);
  });
});

describe('blank fields are absent fields (#14)', () => {
  it('null for any optional field is "not given": it changes nothing and is not an error', () => {
    const event = parseUpdateEvent({
      referralId: id,
      eventId: null,
      occurredAt: null,
      dryRun: null,
      stage: null,
      status: null,
      substatus: 'Won',
      statusReason: null,
      dealValue: null,
      currency: null,
      closingDate: null,
      notes: null,
      name: null,
      externalReferenceId: null,
    });
    expect(event).toEqual({
      referralId: id,
      eventId: undefined,
      occurredAt: undefined,
      dryRun: false,
      intent: { status: 'Closed', substatus: 'Won' },
    });
  });

  it('an event whose change fields are all null or absent is the usual 400 naming the fields', () => {
    const error = invalid({ referralId: id, status: null, dealValue: null, notes: null, stage: null });
    expect(error.extensions.errors).toEqual([
      expect.objectContaining({ field: 'body', code: 'no_change', message: expect.stringContaining('stage, status') }),
    ]);
  });

  it('null is not a value: referralId null is still refused, and status Closed with substatus null needs one', () => {
    expect(invalid({ referralId: null, notes: 'x' }).extensions.errors).toContainEqual(
      expect.objectContaining({ field: 'referralId' }),
    );
    expect(invalid({ referralId: id, status: 'Closed', substatus: null }).extensions.errors).toContainEqual(
      expect.objectContaining({ field: 'status', code: 'substatus_required' }),
    );
  });
});

describe('stage, mapped by STAGE_MAP (#14)', () => {
  const salesforce = { stageMap: presetStageMap('salesforce') };

  it('maps the stage to its status and substatus, ignoring case and surrounding spaces, and says what it mapped', () => {
    expect(parseUpdateEvent({ referralId: id, stage: '  closed WON ', dealValue: 10 }, salesforce)).toEqual({
      referralId: id,
      eventId: undefined,
      occurredAt: undefined,
      dryRun: false,
      intent: { status: 'Closed', substatus: 'Won', dealValue: 10 },
      stage: { name: 'Closed Won', target: 'Closed/Won' },
    });
    expect(parseUpdateEvent({ referralId: id, stage: 'Prospecting' }, salesforce)).toMatchObject({
      intent: { status: 'New' },
      stage: { name: 'Prospecting', target: 'New' },
    });
    // New alone: the referral keeps its current New substatus (no substatus in the intent).
    expect(parseUpdateEvent({ referralId: id, stage: 'Prospecting' }, salesforce).intent).toEqual({ status: 'New' });
  });

  it('a stage mapped to null changes no status; the other fields still apply', () => {
    const stageMap = (parseStageMap('{"Needs Analysis": null}') as { map: StageMap }).map;
    expect(parseUpdateEvent({ referralId: id, stage: 'needs analysis', notes: 'x' }, { stageMap })).toMatchObject({
      intent: { notes: 'x' },
      stage: { name: 'Needs Analysis', target: null },
    });
    // Alone it names a field all the same: answered (unchanged), not refused.
    expect(parseUpdateEvent({ referralId: id, stage: 'Needs Analysis' }, { stageMap }).intent).toEqual({});
  });

  it('stage with status or substatus is ambiguous: 400 on stage', () => {
    for (const extra of [{ status: 'Active' }, { substatus: 'Won' }]) {
      expect(invalid({ referralId: id, stage: 'Closed Won', ...extra }, salesforce).extensions.errors).toEqual([
        expect.objectContaining({ field: 'stage', code: 'stage_ambiguous' }),
      ]);
    }
    // null status beside it is "not given".
    expect(parseUpdateEvent({ referralId: id, stage: 'Closed Won', status: null }, salesforce).intent).toEqual({
      status: 'Closed',
      substatus: 'Won',
    });
  });

  it('an unknown stage: 400 naming the field and listing the configured stages, never echoing the value', () => {
    const [entry] = invalid({ referralId: id, stage: 'Signed by ACME' }, salesforce).extensions.errors ?? [];
    expect(entry).toMatchObject({ field: 'stage', pointer: '/stage', code: 'unknown_stage' });
    expect(entry?.message).toContain('Prospecting, Qualification, Needs Analysis');
    expect(entry?.message).toContain('Closed Won, Closed Lost');
    expect(entry?.message).not.toContain('ACME');
  });

  it('a stage with no map configured: 400 saying how to configure one', () => {
    const [entry] = invalid({ referralId: id, stage: 'Closed Won' }).extensions.errors ?? [];
    expect(entry).toMatchObject({ field: 'stage', code: 'stage_map_missing' });
    expect(entry?.message).toContain('STAGE_MAP');
    expect(entry?.message).toContain('salesforce');
  });
});
