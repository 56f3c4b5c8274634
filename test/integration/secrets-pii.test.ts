/**
 * Planted secrets and customer data never reach the logs or the answers: whatever happens (successes,
 * validation errors, rule violations, upstream faults, bad signatures, replays), the captured output of
 * the app process and every answer are scanned for each planted value. By contract, a success answer
 * carries the old and new values of the fields the caller itself changed (`changes`), and a dry run
 * the referral it would write; those are returned to the caller that asked, and checked separately:
 * nothing else of the referral comes back. At rest, the idempotency table holds nothing of the referral
 * beyond those changes (dry runs are never stored).
 */
import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import { beforeAll, expect, it } from 'vitest';
import { makeReferral } from '../../dev/sandbox/seed.js';
import { signWebhook } from '../../shared/http/webhook-signature.js';
import { type Answer, useStack } from '../support/stack.js';

const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const PII = {
  customer: 'Zephyrine Quillfeather Holdings',
  email: 'z.quillfeather@quill-holdings.example',
  phone: '+1 425 555 0199',
  contact: 'Oswaldine Brackenbury',
  street: '17 Marigold Crescent',
  note: 'Budget approved by Oswaldine; call her mobile after 5pm',
};

const stack = useStack({ WEBHOOK_SECRETS: WEBHOOK_SECRET });
let referralId: string;
const answers: Answer[] = [];

beforeAll(() => {
  const referral = makeReferral({
    customerProfile: {
      name: PII.customer,
      address: { addressLine1: PII.street, city: 'Redmond', state: 'WA', postalCode: '98052', country: 'US' },
      team: [{ firstName: PII.contact, lastName: 'B', email: PII.email, phoneNumber: PII.phone }],
    },
    details: { notes: PII.note, dealValue: 1, currency: 'USD' },
  });
  stack.sandbox.putReferral(referral);
  referralId = referral.id;
});

async function send(event: Record<string, unknown>, options: { sign?: boolean; id?: string } = {}) {
  const body = JSON.stringify(event);
  const id = options.id ?? `msg_${randomBytes(8).toString('hex')}`;
  const timestamp = Math.floor(Date.now() / 1000);
  const headers: Record<string, string> =
    options.sign === false
      ? { 'webhook-id': id }
      : {
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(WEBHOOK_SECRET, id, timestamp, body),
        };
  const answer = await stack.post(body, { headers });
  if (event.dryRun !== true) answers.push(answer);
  return answer;
}

it('keeps every planted secret and every piece of customer data out of logs and answers', async () => {
  const eventNotes = `Spoke to ${PII.contact} (${PII.email}, ${PII.phone})`;
  // Successes, with PII in the event itself.
  expect((await send({ referralId, notes: eventNotes, name: `${PII.customer} renewal` })).status).toBe(200);
  const id = `msg_${randomBytes(8).toString('hex')}`;
  await send({ referralId, statusReason: `Champion: ${PII.contact}` }, { id });
  expect(
    (await send({ referralId, statusReason: `Champion: ${PII.contact}` }, { id })).headers.get('idempotent-replayed'),
  ).toBe('true');
  // Validation errors carrying PII in bad fields and unknown keys.
  expect((await send({ referralId, dealValue: PII.phone, email: PII.email, currency: PII.customer })).status).toBe(400);
  expect((await send({ referralId: PII.email, notes: PII.note })).status).toBe(400);
  // Rule violations and upstream failures.
  expect((await send({ referralId, substatus: 'Pending', notes: eventNotes })).status).toBe(200);
  stack.sandbox.injectFault({ times: 50, action: { type: 'status', status: 500 } });
  expect((await send({ referralId, notes: `${eventNotes} again` })).status).toBe(502);
  stack.sandbox.clearFaults();
  stack.sandbox.injectFault({
    method: 'PUT',
    action: { type: 'status', status: 400, body: { error: { code: 'invalidRequest', message: 'Field is invalid' } } },
  });
  expect((await send({ referralId, notes: `${eventNotes} once more` })).status).toBe(422);
  // Bad signatures, with PII in the body.
  expect((await send({ referralId, notes: eventNotes }, { sign: false })).status).toBe(401);
  // A dry run returns the referral to its caller (by contract) but still logs nothing of it.
  expect((await send({ referralId, notes: 'dry', dryRun: true })).status).toBe(200);

  const planted = [
    ...Object.values(PII),
    WEBHOOK_SECRET,
    WEBHOOK_SECRET.slice('whsec_'.length),
    stack.identity.header,
    ...stack.identity.issued.map((t) => t.token),
  ];
  const logs = stack.host.output();
  expect(logs).toContain('"event":"referral-update"');
  const requestedPaths = new Set(['/details/notes', '/name', '/statusReason', '/substatus', '/status']);
  for (const answer of answers) {
    const changes = (answer.body.changes ?? []) as Array<{ path: string }>;
    for (const change of changes) expect(requestedPaths).toContain(change.path);
  }
  const withoutChanges = answers.map(({ body }) => JSON.stringify({ ...body, changes: undefined }));
  for (const value of planted) {
    expect(logs, `log contains ${value.slice(0, 12)}…`).not.toContain(value);
    for (const text of withoutChanges) expect(text, `answer contains ${value.slice(0, 12)}…`).not.toContain(value);
  }
});

it("stores no customer data beyond the caller's own changes: dry runs (with an event id) are not stored", async () => {
  const id = `msg_${randomBytes(8).toString('hex')}`;
  const dry = await send({ referralId, notes: 'dry with an id', dryRun: true }, { id });
  expect(dry.status).toBe(200);
  expect(JSON.stringify(dry.body.wouldPut)).toContain(PII.street); // the caller who asked gets the referral
  expect((await send({ referralId, statusReason: 'stored' })).status).toBe(200);

  const connectionString = process.env.AzureWebJobsStorage as string;
  const table = TableClient.fromConnectionString(connectionString, stack.idempotencyTable, {
    allowInsecureConnection: true,
  });
  const rows: string[] = [];
  for await (const row of table.listEntities()) rows.push(JSON.stringify(row));
  expect(rows.some((row) => row.includes('"state":"done"'))).toBe(true);
  // In no event of this file: only a stored copy of the referral could hold them.
  for (const value of [PII.street, 'Redmond', 'wouldPut']) {
    for (const row of rows) expect(row, `stored row holds ${value.slice(0, 12)}…`).not.toContain(value);
  }
});
