// Writes the "Asynchronous delivery" section of docs/reliability.md (from its heading to the end of the file) from
// the figures the async suites recorded:
//   test-results/async-outage.json         (test/integration/async-outage.test.ts; required)
//   test-results/async-two-instances.json  (test/integration/async-two-instances.test.ts; required)
// Plain Node ESM, no dependencies. Run by `npm run reliability:async` after those suites.
// scripts/reliability-report.mjs keeps this section when it rewrites the rest of the file.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { failer, n, readJsonOr, seconds, table, verdict } from './report-format.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outFile = join(root, 'docs', 'reliability.md');
const HEADING = '## Asynchronous delivery';

const fail = failer('async-report');

function readFigures(name) {
  const file = join(root, 'test-results', `async-${name}.json`);
  if (!existsSync(file)) {
    fail(`${relative(root, file)} is missing: run the suite first (npm run reliability:async)`);
  }
  return readJsonOr(fail, file, relative(root, file));
}

const outage = readFigures('outage');
const two = readFigures('two-instances');
for (const [name, figures, keys] of [
  ['outage', outage, ['events', 'referrals', 'redeliveries', 'faults', 'lost', 'doubled', 'drainMs', 'outageMs']],
  ['two-instances', two, ['events', 'instances', 'kills', 'inFlightAtKill', 'lost', 'doubled', 'stuckRunning']],
]) {
  const missing = keys.filter((key) => figures[key] === undefined);
  if (missing.length > 0) fail(`async-${name}.json has no ${missing.join(', ')}; was it written by the suite?`);
}

const outcomes = (byOutcome) =>
  Object.entries(byOutcome ?? {})
    .map(([key, count]) => `${n(count)} \`${key}\``)
    .join(', ');
const s = outage.settings ?? {};
const measuredOn = (figures) => `${figures.date?.slice(0, 10)}, Node ${figures.node}, ${figures.platform}`;

const lines = [
  HEADING,
  '',
  'Contract v1.1 (`Prefer: respond-async`, docs/async-delivery.md): the adapter answers `202` with a status URL and',
  'a queue worker applies the event for as long as it takes. Measured by `npm run reliability:async`',
  '(test/integration/async-outage.test.ts and async-two-instances.test.ts, then scripts/async-report.mjs) on',
  `${measuredOn(outage)}; both suites also run in \`npm test\`, with`,
  'test/integration/async-contract.test.ts (every answer of the contract, the dead-lettering, the replay and the',
  'poison queue). Everything is real: the built app under the local host in child processes, its queue worker',
  "polling a queue of the suite's own on Azurite (Table and Queue services), the Partner Center sandbox.",
  '',
  'Short settings, so that hours of trouble fit in seconds (everything else is the default):',
  '',
  table(
    ['setting', 'in the suites', 'default'],
    [
      [
        '`ASYNC_RETRY_MIN_SECONDS` / `ASYNC_RETRY_MAX_SECONDS`',
        `${s.ASYNC_RETRY_MIN_SECONDS} / ${s.ASYNC_RETRY_MAX_SECONDS}`,
        '30 / 900',
      ],
      ['`ASYNC_POLL_SECONDS` (`Retry-After` of a `202`)', s.ASYNC_POLL_SECONDS, '5'],
      [
        '`ASYNC_MAX_AGE_SECONDS`',
        `${s.ASYNC_MAX_AGE_SECONDS} (8 in the contract suite, to see an event dead-lettered)`,
        '86400',
      ],
      [
        '`UPSTREAM_BUDGET_MS` (one attempt)',
        `${n(Number(s.UPSTREAM_BUDGET_MS))} (${n(two.settings?.budgetMs)} with two instances)`,
        '60,000',
      ],
      ['`UPSTREAM_REQUEST_TIMEOUT_MS`', n(Number(s.UPSTREAM_REQUEST_TIMEOUT_MS)), '15,000'],
      [
        '`RETRY_BASE_DELAY_MS` / `RETRY_MAX_DELAY_MS`',
        `${s.RETRY_BASE_DELAY_MS} / ${s.RETRY_MAX_DELAY_MS}`,
        '200 / 10,000',
      ],
      ['`IDEMPOTENCY_WAIT_MS`', n(Number(s.IDEMPOTENCY_WAIT_MS)), '10,000'],
      [
        '`LOCAL_HOST_QUEUE_MAX_POLLING_MS` (local host only)',
        s.LOCAL_HOST_QUEUE_MAX_POLLING_MS,
        'host.json, 2 s locally',
      ],
      ['`LOCAL_HOST_QUEUE_LEASE_SECONDS` (local host only)', `${n(two.settings?.leaseSeconds)} (two instances)`, '600'],
    ],
  ),
  '',
  'The two `LOCAL_HOST_QUEUE_*` knobs belong to the local host, not to the app ([Queue triggers](local-development.md#queue-triggers)).',
  '',
  '### Outage',
  '',
  `Partner Center answers \`503\` (one call in ${outage.throttleEvery ?? 8} \`429\` with \`Retry-After: 1\`, which pauses the whole instance for that second) for ${seconds(outage.outageMs)}, ` +
    `${Math.round(outage.outageMs / Number(s.UPSTREAM_BUDGET_MS))} times an attempt's budget: a synchronous call made ` +
    `during it answered \`${outage.syncDuringOutage?.status} ${outage.syncDuringOutage?.code}\`. Meanwhile ` +
    `${n(outage.events)} events over ${n(outage.referrals)} referrals (1–3 fields each, unique values, each its own ` +
    `\`occurredAt\`, sent in shuffled order) are accepted, ${n(outage.redeliveries)} of them twice with the same id and ` +
    'body; then Partner Center recovers.',
  '',
  table(
    ['figure', 'value'],
    [
      ['events accepted (`202`)', n(outage.events)],
      ['redeliveries (same id, same body: same status URL)', n(outage.redeliveries)],
      ['instances', n(outage.instances)],
      ['faults answered by the sandbox', `${n(outage.faults)} (${outcomes(outage.faultsByAnswer)})`],
      ['upstream requests', n(outage.upstreamRequests)],
      [
        'attempts (queue deliveries of the worker)',
        `${n(outage.attempts?.total)} (at most ${n(outage.attempts?.max)} for one event)`,
      ],
      ['final answers', outcomes(outage.finalOutcomes)],
      ['writes stored', n(outage.storedWrites)],
      ['lost (not `succeeded`, or the referral differs from the per-field model)', verdict(outage.lost)],
      ['doubled (an event stored more than once)', verdict(outage.doubled)],
      ['dead-lettered', verdict(outage.deadLettered)],
      ['time to drain (recovery → every event final)', seconds(outage.drainMs)],
    ],
  ),
  '',
  'With a quarter or more of the answers `429`, the instance also learns a pace (docs/partner-center-api.md#throttling-and-retries)',
  'and keeps it until 60 s after the last `429`: the same run (`ASYNC_THROTTLE_EVERY=4 ASYNC_DRAIN_LIMIT_MS=150000`)',
  'then drains in about 65 s instead of seconds (measured once: 1,243 attempts for the 200 events, most of them ending',
  '`504 upstream_timeout` while waiting their turn), still with nothing lost or doubled.',
  '',
  '`stale` events are applied too: every field they name was already set by an event with a later `occurredAt`',
  '(the per-field ordering of [Ordering](ordering.md)), so they write nothing, and the suite checks they did not.',
  '',
  '### Two instances, one killed',
  '',
  `Two app processes on one Azurite consume one queue; ${n(two.events)} events over ${n(two.referrals)} referrals are`,
  `accepted by both, while Partner Center is slow (every \`GET\` waits ${n(two.settings?.getLatencyMs)} ms, every \`PUT\``,
  `${n(two.settings?.putLatencyMs)} ms and is then applied whatever became of its caller). One instance is killed`,
  '(`SIGKILL`) in the middle of its work, just after one of its `PUT`s reached Partner Center: that write lands after',
  'its death, unrecorded, and the other instance must find it there rather than write it again.',
  '',
  table(
    ['figure', 'value'],
    [
      ['events', n(two.events)],
      ['instances / kills', `${n(two.instances)} / ${n(two.kills)}`],
      ['killed after', seconds(two.killAfterMs)],
      ['messages the victim held at its death (invocations in flight)', n(two.inFlightAtKill)],
      [
        "the victim's `PUT`s on their way at its death / landed after it",
        `${n(two.victimPutsPendingAtKill)} / ${n(two.victimPutsLandedAfterDeath)}`,
      ],
      [
        'events written by the victim / of which confirmed `unchanged` by the survivor',
        `${n(two.writtenByVictim)} / ${n(two.writtenByVictimConfirmedBySurvivor)}`,
      ],
      ['worker invocations: victim / survivor', `${n(two.victimInvocations)} / ${n(two.survivorInvocations)}`],
      ['attempts', `${n(two.attempts?.total)} (${n(two.attempts?.retried)} events tried more than once)`],
      ['final answers', outcomes(two.finalOutcomes)],
      ['lost', verdict(two.lost)],
      ['doubled', verdict(two.doubled)],
      ['stuck in `running` at the end', verdict(two.stuckRunning)],
      ['dead-lettered', verdict(two.deadLettered)],
      ['time to drain (kill → every event final)', seconds(two.drainMs)],
    ],
  ),
  '',
  'A `PUT` of the victim still on its way may also be refused with `412` (the survivor wrote that referral',
  'meanwhile), and an event the victim wrote may have been recorded by the victim itself before its death, or',
  'ended `stale` when a later event set its fields first: the checks below hold for all of them.',
  '',
  `The killed instance's messages reappear when their lease lapses (${n(two.settings?.leaseSeconds)} s here, 10 minutes`,
  "in Azure); its idempotency claims lapse after the budget plus 15 s, and until then the survivor's attempts answer",
  '`in_progress` and are retried from the queue: that wait is most of the time to drain.',
  '',
  '### What is checked',
  '',
  '- **Nothing lost:** every event ends `succeeded` (its status URL answers `200`); every referral ends with, field by',
  '  field, the value of the event with the latest `occurredAt` that names the field, and nothing else of it changed.',
  "- **Nothing doubled:** in the sandbox's ledger of stored writes, each event's unique values appear in at most one",
  '  write; an event answered `updated` or `unchanged` in exactly one, a `stale` one (outage) in none.',
  '- **Nothing stuck:** no event is left `queued`, `running` or `retrying` (the operations list, by state), none',
  '  dead-lettered.',
  '',
  '### Reproduce',
  '',
  '```sh',
  'npm run reliability:async                       # new random plans',
  `ASYNC_SEED=${outage.seed} npx vitest run test/integration/async-outage.test.ts`,
  `ASYNC_SEED=${two.seed} npx vitest run test/integration/async-two-instances.test.ts`,
  '```',
  '',
  'The seed fixes the events and their order; the interleaving of the instances differs from run to run.',
  '',
];

const existing = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
const at = existing.indexOf(`\n${HEADING}\n`);
const before = (at >= 0 ? existing.slice(0, at) : existing).trimEnd();
writeFileSync(outFile, `${before}\n\n${lines.join('\n').trimEnd()}\n`);
process.stdout.write(
  `Written ${relative(root, outFile)} (${HEADING.slice(3)}): outage ${n(outage.events)} events, lost ${outage.lost}, doubled ${outage.doubled}; two instances lost ${two.lost}, doubled ${two.doubled}, stuck ${two.stuckRunning}\n`,
);
