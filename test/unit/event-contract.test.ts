import { describe, expect, it } from 'vitest';
import { eventIdFromHeaders, parseUpdateEvent, toUtcDateTime } from '../../shared/contract/update-event.js';
import { AdapterError } from '../../shared/core/errors.js';

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
