/**
 * One delivery start to finish (processEvent) in process: memory idempotency store, scripted Partner
 * Center (test/support/scripted-partner-center.ts), one test per rule of the pipeline: size limit →
 * signature → contract → idempotency → per-referral lock → ordering → update → answer.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { AdapterError } from '../../shared/core/errors.js';
import { signWebhook } from '../../shared/http/webhook-signature.js';
import {
  createMemoryIdempotencyStore,
  type IdempotencyStore,
  type StoredResponse,
} from '../../shared/idempotency/store.js';
import { deferred, GET, PUT, ScriptedPartnerCenter } from '../support/scripted-partner-center.js';
import { deliver, REFERRAL_ID, referral, testApp } from '../support/use-cases.js';

const pending = referral();
const event = (fields: Record<string, unknown> = {}) => ({ referralId: REFERRAL_ID, status: 'Active', ...fields });

describe('idempotency (memory store)', () => {
  it('replays the stored answer to a redelivery: same bytes, Idempotent-Replayed: true, no upstream call', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok()]);
    const app = testApp(pc);
    const delivery = { body: event({ dealValue: 1200 }), headers: { 'Idempotency-Key': '"evt-replay"' } };

    const first = await deliver(app, delivery);
    const again = await deliver(app, delivery);

    expect(first.status).toBe(200);
    expect(first.json.outcome).toBe('updated');
    expect(again.status).toBe(200);
    expect(again.body).toBe(first.body);
    expect(again.headers['Idempotent-Replayed']).toBe('true');
    expect(again.headers['content-type']).toBe(first.headers['content-type']);
    expect(first.headers['Idempotent-Replayed']).toBeUndefined();
    expect(pc.sequence).toBe('GET PUT');
  });

  it('refuses an event id reused for another event: 422 idempotency_key_reused, nothing upstream', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok()]);
    const app = testApp(pc);

    await deliver(app, { body: event({ eventId: 'evt-reused', dealValue: 1 }) });
    const reused = await deliver(app, { body: event({ eventId: 'evt-reused', dealValue: 2 }) });

    expect(reused.status).toBe(422);
    expect(reused.json.code).toBe('idempotency_key_reused');
    expect(pc.sequence).toBe('GET PUT');
  });

  it('a duplicate arriving while the first runs waits for it and gets its answer (one PUT)', async () => {
    const readArrived = deferred();
    const openRead = deferred();
    const pc = new ScriptedPartnerCenter([
      GET.ok(pending, undefined, { onCall: () => readArrived.resolve(), until: openRead.promise }),
      PUT.ok(),
    ]);
    const app = testApp(pc);
    const delivery = { body: event({ eventId: 'evt-twice' }) };

    const first = deliver(app, delivery);
    await readArrived.promise;
    let duplicateAnswered = false;
    const duplicate = deliver(app, delivery).then((response) => {
      duplicateAnswered = true;
      return response;
    });
    await sleep(20); // ten polls of the duplicate (idempotencyPollMs: 2)
    expect(duplicateAnswered).toBe(false);
    openRead.resolve();
    const [a, b] = await Promise.all([first, duplicate]);

    expect(a.status).toBe(200);
    expect(b.body).toBe(a.body);
    expect(b.headers['Idempotent-Replayed']).toBe('true');
    expect(pc.sequence).toBe('GET PUT');
  });

  it.each([
    {
      answer: '409 conflict',
      settings: { CONCURRENCY_MAX_RETRIES: '0' },
      failing: [GET.ok(pending), PUT.status(412)],
      status: 409,
      code: 'conflict',
      retryAfter: '1',
    },
    {
      answer: '503 (upstream 429)',
      settings: { UPSTREAM_MAX_RETRIES: '0' },
      failing: [GET.status(429, { retryAfterSeconds: 30 })],
      status: 503,
      code: 'upstream_unavailable',
      retryAfter: '30',
    },
    {
      answer: '502 (upstream 500)',
      settings: { UPSTREAM_MAX_RETRIES: '0' },
      failing: [GET.status(500)],
      status: 502,
      code: 'upstream_error',
      retryAfter: undefined, // Retry-After goes with 409 and 503 only (contract/headers.ts)
    },
  ])(
    'never stores a non-final answer ($answer): the redelivery runs again',
    async ({ settings, failing, status, code, retryAfter }) => {
      const pc = new ScriptedPartnerCenter(failing);
      const app = testApp(pc, { settings });
      const delivery = { body: event({ eventId: 'evt-retry' }) };

      const first = await deliver(app, delivery);
      expect(first.status).toBe(status);
      expect(first.json.code).toBe(code);
      expect(first.headers['retry-after']).toBe(retryAfter);

      const before = pc.calls.length;
      pc.append(GET.ok(referral({ eTag: '"e7"' })), PUT.ok());
      const redelivered = await deliver(app, delivery);

      expect(redelivered.status).toBe(200);
      expect(redelivered.json.outcome).toBe('updated');
      expect(redelivered.headers['Idempotent-Replayed']).toBeUndefined();
      expect(pc.calls.length - before).toBe(2);
    },
  );
});

describe('dry runs and event ids (#11 item 2)', () => {
  it('a dry run never claims its event id: the real event with that id is applied afterwards', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), GET.ok(pending), PUT.ok()]);
    const app = testApp(pc);
    const headers = { 'Idempotency-Key': '"evt-dry-first"' };

    const dry = await deliver(app, { body: event({ dealValue: 7 }), headers, query: { dryRun: 'true' } });
    const real = await deliver(app, { body: event({ dealValue: 7 }), headers });

    expect(dry.json.outcome).toBe('dry-run');
    expect(real.status).toBe(200);
    expect(real.json.outcome).toBe('updated');
    expect(pc.sequence).toBe('GET GET PUT');
  });

  it('a dry run is never stored: the same dry run again runs again, and is no replay', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), GET.ok(pending)]);
    const app = testApp(pc);
    const delivery = { body: event({ eventId: 'evt-dry-twice', dryRun: true }) };

    await deliver(app, delivery);
    const again = await deliver(app, delivery);

    expect(again.json.outcome).toBe('dry-run');
    expect(again.headers['Idempotent-Replayed']).toBeUndefined();
    expect(pc.sequence).toBe('GET GET');
  });

  it('a dry run does not consume an id already used: the real event is still replayed afterwards', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok(), GET.current()]);
    const app = testApp(pc);
    const headers = { 'Idempotency-Key': '"evt-real-first"' };

    const real = await deliver(app, { body: event(), headers });
    const dry = await deliver(app, { body: event({ dryRun: true }), headers });
    const again = await deliver(app, { body: event(), headers });

    expect(dry.json.outcome).toBe('dry-run');
    expect(again.body).toBe(real.body);
    expect(again.headers['Idempotent-Replayed']).toBe('true');
  });
});

describe('what a stored answer keeps (#11 item 5)', () => {
  const customer = {
    name: 'Zephyrine Quillfeather Holdings',
    email: 'z.quillfeather@quill-holdings.example',
    phone: '+1 425 555 0199',
  };
  const withCustomer = referral({
    customerProfile: { name: customer.name, team: [{ email: customer.email, phoneNumber: customer.phone }] },
  });

  it("no stored answer holds more of the referral than the caller's own changes (dry runs are not stored)", async () => {
    const stored: StoredResponse[] = [];
    const memory = createMemoryIdempotencyStore();
    const recording: IdempotencyStore = {
      ...memory,
      complete: (lease, fingerprint, response, options) => {
        stored.push(response);
        return memory.complete(lease, fingerprint, response, options);
      },
    };
    const pc = new ScriptedPartnerCenter([
      GET.ok(withCustomer),
      GET.ok(withCustomer),
      PUT.ok(),
      GET.current(),
      GET.status(404),
    ]);
    const app = testApp(pc, { idempotency: recording });

    const dry = await deliver(app, { body: event({ eventId: 'evt-dry', dryRun: true }) });
    await deliver(app, { body: event({ eventId: 'evt-write', dealValue: 10 }) });
    await deliver(app, { body: event({ eventId: 'evt-refused', status: 'New', substatus: 'Pending' }) });
    await deliver(app, { body: event({ eventId: 'evt-missing' }) });

    expect(JSON.stringify(dry.json.wouldPut)).toContain(customer.email); // returned to the caller who asked
    expect(stored.map((answer) => answer.status)).toEqual([200, 422, 404]);
    for (const answer of stored) {
      for (const value of Object.values(customer)) expect(answer.body).not.toContain(value);
      expect(answer.body).not.toContain('wouldPut');
    }
  });
});

describe('signed webhooks: nothing outside the signature changes what a delivery does (#11 item 2)', () => {
  const secret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
  const signed = (body: string, id: string) => {
    const timestamp = Math.floor(Date.now() / 1000);
    return {
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(secret, id, timestamp, body),
    };
  };

  it('a captured delivery replayed with ?dryRun=true is a 400 and claims nothing: the genuine one is applied', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok()]);
    const app = testApp(pc, { settings: { WEBHOOK_SECRETS: secret } });
    const body = JSON.stringify(event({ dealValue: 9 }));
    const headers = signed(body, 'msg-captured');

    const replayed = await deliver(app, { body, headers, query: { dryRun: 'true' } });
    const genuine = await deliver(app, { body, headers });

    expect(replayed.status).toBe(400);
    expect(replayed.json.errors).toEqual([expect.objectContaining({ field: 'dryRun', code: 'unsigned_query' })]);
    expect(genuine.status).toBe(200);
    expect(genuine.json.outcome).toBe('updated');
    expect(pc.sequence).toBe('GET PUT');
  });

  it('a delivery signed for a dry run stays one: the signed body says so, and no query can undo it', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending)]);
    const app = testApp(pc, { settings: { WEBHOOK_SECRETS: secret } });
    const body = JSON.stringify(event({ dealValue: 9, dryRun: true }));
    const headers = signed(body, 'msg-dry');

    const dry = await deliver(app, { body, headers });
    const withQuery = await deliver(app, { body, headers, query: { dryRun: 'false' } });

    expect(dry.json.outcome).toBe('dry-run');
    expect(withQuery.status).toBe(400);
    expect(pc.sequence).toBe('GET');
    expect(pc.puts).toHaveLength(0);
  });
});

describe('per-referral lock', () => {
  it('two events for one referral run one after the other: the second reads what the first wrote', async () => {
    const readArrived = deferred();
    const openRead = deferred();
    const pc = new ScriptedPartnerCenter([
      GET.ok(pending, undefined, { onCall: () => readArrived.resolve(), until: openRead.promise }),
      PUT.ok(),
      GET.current(),
      PUT.ok(),
    ]);
    const app = testApp(pc);

    const first = deliver(app, { body: event({ eventId: 'evt-a', dealValue: 1 }) });
    await readArrived.promise;
    const second = deliver(app, { body: event({ eventId: 'evt-b', name: 'Renamed' }) });
    await sleep(10);
    expect(pc.sequence).toBe('GET'); // the second waits for the lock, it has not read yet
    openRead.resolve();
    const answers = await Promise.all([first, second]);

    expect(answers.map((a) => a.json.outcome)).toEqual(['updated', 'updated']);
    expect(pc.sequence).toBe('GET PUT GET PUT');
    expect(pc.puts[1]?.ifMatch).toBe('"v1"'); // the eTag the first PUT produced
    expect(pc.held).toMatchObject({ name: 'Renamed', details: { dealValue: 1 } });
  });
});

describe('ordering', () => {
  it('an event older than the last applied one answers 200 stale, with no upstream call', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok()]);
    const app = testApp(pc);

    const applied = await deliver(app, { body: event({ occurredAt: '2026-11-25T10:00:00Z' }) });
    const late = await deliver(app, { body: event({ occurredAt: '2026-11-25T09:59:59+00:00' }) });

    expect(applied.json.outcome).toBe('updated');
    expect(late.status).toBe(200);
    expect(late.json).toMatchObject({
      outcome: 'stale',
      lastAppliedOccurredAt: '2026-11-25T10:00:00.000Z',
      superseded: [
        { path: '/status', occurredAt: '2026-11-25T10:00:00.000Z' },
        { path: '/substatus', occurredAt: '2026-11-25T10:00:00.000Z' },
      ],
    });
    expect(pc.sequence).toBe('GET PUT');
  });

  it('an older event on a different field is applied: ordering is per field (issue #11)', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok(), GET.current(), PUT.ok()]);
    const app = testApp(pc);
    const body = (fields: Record<string, unknown>) => ({ referralId: REFERRAL_ID, ...fields });

    const later = await deliver(app, { body: body({ occurredAt: '2026-11-25T10:00:02Z', notes: 'later' }) });
    const older = await deliver(app, { body: body({ occurredAt: '2026-11-25T10:00:01Z', dealValue: 4242 }) });

    expect(later.json.outcome).toBe('updated');
    expect(older.json).toMatchObject({ outcome: 'updated', changes: [{ path: '/details/dealValue', to: 4242 }] });
    expect(older.json).not.toHaveProperty('superseded');
    expect(pc.held).toMatchObject({ details: { notes: 'later', dealValue: 4242 } });
  });

  it('an event of which some fields were superseded applies the others and lists the skipped ones', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok(), GET.current(), PUT.ok()]);
    const app = testApp(pc);
    const body = (fields: Record<string, unknown>) => ({ referralId: REFERRAL_ID, ...fields });

    await deliver(app, { body: body({ occurredAt: '2026-11-25T10:00:02Z', notes: 'later' }) });
    const older = await deliver(app, {
      body: body({ occurredAt: '2026-11-25T10:00:01Z', notes: 'older', dealValue: 7 }),
    });

    expect(older.json).toMatchObject({
      outcome: 'updated',
      changes: [{ path: '/details/dealValue', to: 7 }],
      superseded: [{ path: '/details/notes', occurredAt: '2026-11-25T10:00:02.000Z' }],
    });
    expect(pc.held).toMatchObject({ details: { notes: 'later', dealValue: 7 } });
  });

  it('an occurredAt more than MAX_CLOCK_SKEW_SECONDS ahead is refused with 400 naming the field', async () => {
    const pc = new ScriptedPartnerCenter([]);
    const app = testApp(pc, { settings: { MAX_CLOCK_SKEW_SECONDS: '60' } });
    const ahead = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

    // 120 s ahead: within the 300 s default, past the configured 60 s, so the setting itself is proven.
    const refused = await deliver(app, { body: event({ occurredAt: ahead(120) }) });

    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      code: 'invalid_event',
      errors: [{ field: 'occurredAt', pointer: '/occurredAt', code: 'in_future' }],
    });
    expect(pc.sequence).toBe('');
  });

  it('a tie (the same occurredAt on the same field) is applied: a redelivery is not stale', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok(), GET.current()]);
    const app = testApp(pc);
    const body = { referralId: REFERRAL_ID, occurredAt: '2026-11-25T10:00:02Z', notes: 'same' };

    expect((await deliver(app, { body })).json.outcome).toBe('updated');
    expect((await deliver(app, { body })).json.outcome).toBe('unchanged');
  });
});

describe('refused before anything goes upstream', () => {
  it.each([
    { what: 'an unknown field', body: event({ substaus: 'Won' }), field: 'substaus', code: 'unrecognized_key' },
    { what: 'a negative deal value', body: event({ dealValue: -1 }), field: 'dealValue', code: 'too_small' },
    {
      what: 'Closed without substatus',
      body: event({ status: 'Closed' }),
      field: 'status',
      code: 'substatus_required',
    },
    { what: 'a body that is not JSON', body: '{"referralId":', field: 'body', code: 'invalid_json' },
    {
      what: 'a deal value JSON cannot hold exactly (9007199254740993)',
      body: `{"referralId":"${REFERRAL_ID}","dealValue":9007199254740993}`,
      field: 'dealValue',
      code: 'too_big',
    },
    {
      what: 'a deal value that parses to 0 (1e-400)',
      body: `{"referralId":"${REFERRAL_ID}","dealValue":1e-400}`,
      field: 'dealValue',
      code: 'inexact_number',
    },
    {
      what: 'a deal value with more digits than a double holds',
      body: `{"referralId":"${REFERRAL_ID}","dealValue":0.10000000000000000555}`,
      field: 'dealValue',
      code: 'inexact_number',
    },
    {
      what: 'a closing date past 9999-12-31 in UTC',
      body: event({ closingDate: '9999-12-31T23:59:59-01:00' }),
      field: 'closingDate',
      code: 'custom',
    },
  ])('contract: $what → 400 problem naming the field', async ({ body, field, code }) => {
    const pc = new ScriptedPartnerCenter([]);

    const response = await deliver(testApp(pc), { body });

    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json.code).toBe('invalid_event');
    expect(response.json.errors).toContainEqual(expect.objectContaining({ field, code }));
    expect(pc.calls).toHaveLength(0);
  });

  it.each([
    { header: 'Idempotency-Key', value: '""' },
    { header: 'Idempotency-Key', value: '"   "' },
    { header: 'webhook-id', value: '' },
  ])('a blank event id ($header: $value) → 400 naming eventId, never a shared id', async ({ header, value }) => {
    const pc = new ScriptedPartnerCenter([]);

    const response = await deliver(testApp(pc), { body: event(), headers: { [header]: value } });

    expect(response.status).toBe(400);
    expect(response.json.errors).toEqual([expect.objectContaining({ field: 'eventId', code: 'too_small' })]);
    expect(pc.calls).toHaveLength(0);
  });

  it('a body nested thousands deep is still a 400 naming the field', async () => {
    const pc = new ScriptedPartnerCenter([]);
    const nested = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;

    const response = await deliver(testApp(pc), { body: `{"referralId":"${REFERRAL_ID}","notes":${nested}}` });

    expect(response.status).toBe(400);
    expect(response.json.errors).toEqual([expect.objectContaining({ field: 'notes', code: 'invalid_type' })]);
  });

  it('a body above MAX_BODY_BYTES → 413 payload_too_large', async () => {
    const pc = new ScriptedPartnerCenter([]);

    const response = await deliver(testApp(pc, { settings: { MAX_BODY_BYTES: '1024' } }), {
      body: event({ notes: 'x'.repeat(1024) }),
    });

    expect(response.status).toBe(413);
    expect(response.json.code).toBe('payload_too_large');
    expect(pc.calls).toHaveLength(0);
  });

  it('WEBHOOK_SECRETS set and no signature → 401 invalid_signature (a signed copy passes)', async () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok()]);
    const app = testApp(pc, { settings: { WEBHOOK_SECRETS: secret } });
    const body = JSON.stringify(event());

    const unsigned = await deliver(app, { body });

    expect(unsigned.status).toBe(401);
    expect(unsigned.json.code).toBe('invalid_signature');
    expect(pc.calls).toHaveLength(0);

    const timestamp = Math.floor(Date.now() / 1000);
    const signature = signWebhook(secret, 'msg-1', timestamp, body);
    const signed = await deliver(app, {
      body,
      headers: { 'webhook-id': 'msg-1', 'webhook-timestamp': String(timestamp), 'webhook-signature': signature },
    });
    expect(signed.status).toBe(200);
  });

  it('runtime() throwing configuration_invalid → 500 problem naming the problems', async () => {
    const pc = new ScriptedPartnerCenter([]);
    const app = testApp(pc);
    app.runtime = () => {
      throw new AdapterError('configuration_invalid', 'The adapter configuration is invalid: X', {
        extensions: { problems: ['RETRY_BASE_DELAY_MS must not exceed RETRY_MAX_DELAY_MS'] },
      });
    };

    const response = await deliver(app, { body: event() });

    expect(response.status).toBe(500);
    expect(response.json).toMatchObject({
      code: 'configuration_invalid',
      problems: ['RETRY_BASE_DELAY_MS must not exceed RETRY_MAX_DELAY_MS'],
    });
    expect(pc.calls).toHaveLength(0);
  });
});

describe('the event deadline (UPSTREAM_BUDGET_MS, from the start of the event)', () => {
  /** The app with a budget too short to wait for anything (the validated setting's floor is 1 s). */
  function withBudget(app: ReturnType<typeof testApp>, budgetMs: number): void {
    const { config } = app.runtimeValue;
    app.runtimeValue.config = { ...config, retry: { ...config.retry, budgetMs } };
  }

  it('waiting for the per-referral lock past the budget → 504 upstream_timeout; the claim is released', async () => {
    const pc = new ScriptedPartnerCenter([GET.ok(pending), PUT.ok()]);
    const app = testApp(pc);
    const budget = app.runtimeValue.config.retry.budgetMs;
    withBudget(app, 30);
    const held = deferred();
    const holder = app.runtimeValue.referrals.lock.run(REFERRAL_ID, () => held.promise);
    const delivery = { body: event({ eventId: 'evt-behind-lock' }) };

    const timedOut = await deliver(app, delivery);

    expect(timedOut.status).toBe(504);
    expect(timedOut.json).toMatchObject({ code: 'upstream_timeout', retryable: true });
    expect(pc.sequence).toBe('');
    held.resolve();
    await holder;
    withBudget(app, budget);
    const redelivered = await deliver(app, delivery);
    expect(redelivered.status).toBe(200);
    expect(redelivered.json.outcome).toBe('updated');
    expect(redelivered.headers['Idempotent-Replayed']).toBeUndefined();
    expect(pc.sequence).toBe('GET PUT');
  });

  it('a duplicate still waiting for the first copy when its budget runs out → 409 in_progress, retryable', async () => {
    const readArrived = deferred();
    const openRead = deferred();
    const pc = new ScriptedPartnerCenter([
      GET.ok(pending, undefined, { onCall: () => readArrived.resolve(), until: openRead.promise }),
      PUT.ok(),
    ]);
    const app = testApp(pc, { settings: { IDEMPOTENCY_WAIT_MS: '60000' } });
    const delivery = { body: event({ eventId: 'evt-slow-first' }) };
    const first = deliver(app, delivery);
    await readArrived.promise;
    withBudget(app, 30);

    const duplicate = await deliver(app, delivery);

    expect(duplicate.status).toBe(409);
    expect(duplicate.json).toMatchObject({ code: 'in_progress', retryable: true });
    expect(Number(duplicate.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    openRead.resolve();
    expect((await first).json.outcome).toBe('updated');
    expect(pc.sequence).toBe('GET PUT');
  });
});
