// Writes docs/reliability.md from the figures the reliability suite recorded:
//   test-results/reliability.json  (test/integration/reliability.test.ts; required)
//   test-results/fuzz.json         ({ runs, responses5xx, upstreamCalls, timeMs }; optional)
//   test-results/reliability-patch.json (the same suite under PARTNER_CENTER_WRITE_METHOD=patch; optional)
// The "Asynchronous delivery" section at the end (scripts/async-report.mjs) is kept as it is.
// Plain Node ESM, no dependencies. Run by `npm run reliability` after the tests.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { failer, n, readJsonOr, seconds, table, verdict } from './report-format.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const reliabilityFile = join(root, 'test-results', 'reliability.json');
const fuzzFile = join(root, 'test-results', 'fuzz.json');
const patchFile = join(root, 'test-results', 'reliability-patch.json');
const outFile = join(root, 'docs', 'reliability.md');

const fail = failer('reliability-report');
const readJson = (file) => readJsonOr(fail, file, relative(root, file));

if (!existsSync(reliabilityFile)) {
  fail(
    `${relative(root, reliabilityFile)} is missing: run the suite first (npm run build && npx vitest run test/integration/reliability.test.ts)`,
  );
}
const r = readJson(reliabilityFile);
for (const key of ['seed', 'events', 'referrals', 'deliveries', 'sandbox', 'results', 'timeMs', 'faults']) {
  if (r[key] === undefined) fail(`${relative(root, reliabilityFile)} has no "${key}"; was it written by the suite?`);
}

/** The optional fuzz figures, or undefined when that suite did not run. */
function readFuzz() {
  if (!existsSync(fuzzFile)) return undefined;
  const fuzz = readJson(fuzzFile);
  const numbers = ['runs', 'responses5xx', 'upstreamCalls', 'timeMs'];
  const bad = numbers.filter((key) => typeof fuzz[key] !== 'number' || !Number.isFinite(fuzz[key]));
  if (bad.length > 0) fail(`${relative(root, fuzzFile)}: ${bad.join(', ')} must be numbers`);
  return { ...fuzz, measuredAt: statSync(fuzzFile).mtime.toISOString() };
}
const fuzz = readFuzz();

/** The run under the patch write method, or undefined when it did not run. */
function readPatchRun() {
  if (!existsSync(patchFile)) return undefined;
  const run = readJson(patchFile);
  for (const key of ['events', 'referrals', 'deliveries', 'sandbox', 'results', 'timeMs']) {
    if (run[key] === undefined) fail(`${relative(root, patchFile)} has no "${key}"; was it written by the suite?`);
  }
  if (run.writeMethod !== 'patch') fail(`${relative(root, patchFile)} is not a run with writeMethod "patch"`);
  return run;
}
const patchRun = readPatchRun();

const pct = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '–');

const FAULT_MEANING = {
  throttle: '`429` with `Retry-After: 0` or `1`; nothing applied',
  'server-error': '`500`, `502` or `503`; nothing applied',
  reset: 'connection destroyed without an answer; nothing applied',
  'lost-response': 'the write stored, then the connection destroyed: the answer is lost',
  latency: `answered normally after up to ${r.faults.maxLatencyMs ?? 50} ms`,
  'concurrent-edit': 'another writer edits the referral just before the write, so the write gets `412`',
};

const d = r.deliveries;
const res = r.results;
const s = r.sandbox;
const settings = r.settings ?? {};
const date = String(r.date ?? '').slice(0, 10);

const eventKinds = {
  change: 'change 1–3 writable fields',
  activate: 'New → Active (plus 1–2 fields)',
  older: 'deliberately older `occurredAt` (fields set later are superseded)',
  close: '`substatus: Won` closing, late in the referral',
  'won-again': 'a new event asking for `Won` again (nothing to change: `unchanged`)',
  'after-close': 'changes after the closing (must be `422 referral_closed`)',
};

const fuzzRow = fuzz
  ? [
      '5xx under fuzz (`test/integration/fuzz.test.ts`)',
      `${verdict(fuzz.responses5xx)} in ${n(fuzz.runs)} runs (${n(fuzz.upstreamCalls)} upstream calls, ${seconds(fuzz.timeMs)})`,
    ]
  : ['5xx under fuzz (`test/integration/fuzz.test.ts`)', 'not measured in this run'];

/** One row per figure, one column per write method: the PUT run (the main one above) and the PATCH run. */
function methodsSection() {
  if (!patchRun) {
    return ['## Both write methods', '', `The \`patch\` run did not run: ${relative(root, patchFile)} is missing.`, ''];
  }
  const p = patchRun;
  const written = (run, method) =>
    method === 'patch'
      ? `${n(run.sandbox.patches)} sent, ${n(run.sandbox.appliedPatches)} stored`
      : `${n(run.sandbox.puts)} sent, ${n(run.sandbox.appliedPuts)} stored`;
  const row = (label, of) => [label, of(r, 'put'), of(p, 'patch')];
  return [
    '## Both write methods',
    '',
    `The suite runs under each \`PARTNER_CENTER_WRITE_METHOD\`. \`put\` is the run above; \`patch\` (JSON Patch of the`,
    `changed fields, \`If-Match\`, \`Prefer: return=representation\`) runs the same plan with the same seed over the first`,
    `${n(p.referrals)} referrals, to keep the suite's time sane (figures: test-results/reliability-patch.json).`,
    '',
    table(
      ['figure', '`put`', '`patch`'],
      [
        row('events (referrals)', (x) => `${n(x.events)} (${n(x.referrals)})`),
        row('deliveries (HTTP requests)', (x) => `${n(x.deliveries.total)} (${n(x.deliveries.httpRequests)})`),
        row(
          'upstream requests (faults)',
          (x) => `${n(x.sandbox.requests)} (${n(x.sandbox.faults)}, ${pct(x.sandbox.faults, x.sandbox.requests)})`,
        ),
        row('writes', written),
        row('writes answered `412`', (x) => n(x.sandbox.rejected412)),
        row('answers lost after the write was stored (`lost-response`)', (x) =>
          n(x.sandbox.faultsByKind?.['lost-response'] ?? 0),
        ),
        row('lost updates', (x) => verdict(x.results.lostUpdates)),
        row('double applications', (x) => verdict(x.results.doubleApplications)),
        row('fields lost', (x) => verdict(x.results.fieldsLost)),
        row('5xx answers other than `502`/`503`/`504`', (x) => verdict(x.results.responses5xx)),
        row('wrong answers', (x) => verdict(x.results.wrongAnswers)),
        row('replays not byte-identical', (x) => verdict(x.results.replayMismatches)),
        row('errors not `application/problem+json`', (x) => verdict(x.results.notProblemJson)),
        row('events still failing after every caller retry', (x) => n(x.results.unresolvedEvents)),
        row('time (driving the events)', (x) => `${seconds(x.timeMs.total)} (${seconds(x.timeMs.driver)})`),
      ],
    ),
    '',
    p.passed === false
      ? `> **The \`patch\` run FAILED with ${n(p.results.violations)} violations** (seed ${p.seed}); see test-results/reliability-patch.json.\n`
      : '',
  ];
}

const lines = [
  '# Reliability',
  '',
  `Measured by \`npm run reliability\` (test/integration/reliability.test.ts, then scripts/reliability-report.mjs)`,
  `on ${date}, Node ${r.node}, ${r.platform ?? ''}; seed **${r.seed}**.`,
  'What the asynchronous path (queue, retries for hours, dead letters) guarantees: [async-delivery.md](async-delivery.md#crash-safety).',
  r.passed === false
    ? `\n> **This run FAILED with ${n(res.violations)} violations.** The first ones are listed at the end.\n`
    : '',
  '## What was driven',
  '',
  `- **${n(r.events)} update events over ${n(r.referrals)} referrals** (half New/Pending, half Active/Accepted, each`,
  '  carrying unknown top-level and nested fields), through the built app under the local host, against the',
  '  Partner Center sandbox, with the idempotency store in Azure Table Storage (Azurite).',
  `- **${n(d.total)} deliveries**: every event once, plus ${n(d.concurrentDuplicates)} concurrent duplicates (same`,
  `  \`webhook-id\`, same body, sent together), ${n(d.laterRedeliveries)} later redeliveries (after the first answer) and`,
  `  ${n(d.reusedIdDifferentBody)} deliveries reusing an id with a different body. Callers retry like Power Automate`,
  `  (up to ${settings.callerRetries ?? 4} more times on \`409\`/\`429\`/\`502\`/\`503\`/\`504\`, same id and body):`,
  `  ${n(d.callerRetries)} retries, ${n(d.httpRequests)} HTTP requests in all, at most ${settings.inFlight ?? 16} in flight.`,
  '  The events of one referral go one after another; different referrals in parallel.',
  `- Upstream faults: the sandbox's seeded random fault mode, **rate ${r.faults.rate}** per upstream request, all`,
  `  ${r.faults.kinds.length} kinds. App settings: \`UPSTREAM_MAX_RETRIES=${settings.upstreamMaxRetries}\`,`,
  `  \`CONCURRENCY_MAX_RETRIES=${settings.concurrencyMaxRetries}\`, \`UPSTREAM_BUDGET_MS=${settings.upstreamBudgetMs}\`,`,
  `  \`UPSTREAM_REQUEST_TIMEOUT_MS=${settings.requestTimeoutMs ?? '–'}\`, backoff ${settings.retryBaseDelayMs ?? '–'}–${settings.retryMaxDelayMs ?? '–'} ms`,
  '  (the defaults are 4, 4, 60000, 15000 and 200–10000 ms: fewer retries inside the app means more retryable',
  '  answers, so callers have to retry, and a retry after a lost PUT answer must come back `unchanged`).',
  '',
  table(
    ['events', 'count'],
    Object.entries(r.eventsByKind ?? {}).map(([kind, count]) => [eventKinds[kind] ?? kind, n(count)]),
  ),
  '',
  '## Faults injected',
  '',
  table(
    ['kind', 'count', 'what it does'],
    r.faults.kinds.map((kind) => [`\`${kind}\``, n(s.faultsByKind?.[kind] ?? 0), FAULT_MEANING[kind] ?? '']),
  ),
  '',
  `${n(s.faults)} faults in ${n(s.requests)} upstream requests (${pct(s.faults, s.requests)}); ${n(s.puts)} PUTs, ${n(s.appliedPuts)} stored,`,
  `${n(s.rejected412)} answered \`412\`; ${n(s.externalEdits)} edits by the concurrent writer, all of which must survive.`,
  '',
  '## Results',
  '',
  table(
    ['check', 'result'],
    [
      ['lost updates', verdict(res.lostUpdates)],
      ['double applications', verdict(res.doubleApplications)],
      ['fields lost (known or unknown, nested or not; concurrent edits)', verdict(res.fieldsLost)],
      ['5xx answers other than the retryable `502`/`503`/`504` (no `500` ever)', verdict(res.responses5xx)],
      ['wrong answers (outcome, `changes`, eTag, status, `stale`, `referral_closed`, …)', verdict(res.wrongAnswers)],
      ['replays not byte-identical to the first answer', verdict(res.replayMismatches)],
      ['errors not `application/problem+json`', verdict(res.notProblemJson)],
      [
        'events still failing after every caller retry',
        `${n(res.unresolvedEvents)} (at most ${n(res.unresolvedAllowed ?? 5)} allowed)`,
      ],
      fuzzRow,
      [
        'time',
        `${seconds(r.timeMs.total)} (driving the events: ${seconds(r.timeMs.driver)}; the stack: ${seconds(r.timeMs.startup)})`,
      ],
    ],
  ),
  '',
  ...methodsSection(),
  '## Answers',
  '',
  table(
    ['final answer per event', 'events'],
    Object.entries(r.finalOutcomes ?? {}).map(([outcome, count]) => [`\`${outcome}\``, n(count)]),
  ),
  '',
  table(
    ['every answer, by status', 'count'],
    Object.entries(r.answers?.byStatus ?? {}).map(([status, count]) => [status, n(count)]),
  ),
  '',
  `${n(r.answers?.replayed)} answers were replays (\`Idempotent-Replayed: true\`); ${n(r.answers?.retryable5xx)} were retryable`,
  '`502`/`503`/`504` answers that the callers retried.',
  '',
  '## What is checked',
  '',
  'Each referral is fed its events in order, so the suite keeps an exact model: for every field the adapter',
  'writes, the values the referral may hold, and per field the newest `occurredAt` applied',
  '([Ordering](ordering.md)). Then:',
  '',
  '- **No lost update:** every written field ends with the value of the last event answered `updated` or',
  '  `unchanged` that applied it, and an event answered `updated` has exactly one stored write holding all the',
  '  values it did not report as `superseded`.',
  "- **No double application:** every write in the sandbox's ledger belongs to the event being delivered at the",
  '  time, one write at most per event; replays, `stale`, `referral_closed` and `idempotency_key_reused` answers',
  "  store nothing; each event's unique values appear in the ledger at most once, a reused id's body never.",
  '- **No field lost:** everything the adapter does not write equals the snapshot taken before the run, and',
  "  `customAttributes.externalEditCounter` equals the concurrent writer's edit count.",
  '- **Every answer accurate:** `stale` exactly when every field of the event was applied by a later event,',
  '  `superseded` listing at least those of its fields otherwise (and only fields a later event may have set); `updated`',
  "  with the model's `from` and the event's `to`; the answer's eTag is the stored write's; a replay is",
  "  byte-identical to the event's first final answer; every error is a complete problem document.",
  '',
  '## Reproduce',
  '',
  '```sh',
  'npm run reliability                              # a new random seed',
  `RELIABILITY_SEED=${r.seed} npm run reliability   # this run's plan and fault sequence`,
  '```',
  '',
  'The seed fixes the events, the duplicates and the fault drawn at each upstream request position;',
  'concurrent requests may interleave differently from run to run.',
  '',
];

if (fuzz) {
  lines.push(
    `Fuzz figures from test-results/fuzz.json, written ${fuzz.measuredAt.slice(0, 19).replace('T', ' ')} UTC.`,
    '',
  );
}
if (r.passed === false && Array.isArray(r.violationSamples) && r.violationSamples.length > 0) {
  lines.push('## Violations (first ones)', '', ...r.violationSamples.map((v) => `- ${v.replaceAll('\n', ' ')}`), '');
}

const markdown = `${lines
  .filter((line, i, all) => !(line === '' && all[i - 1] === ''))
  .join('\n')
  .trimEnd()}\n`;
// The asynchronous delivery section (scripts/async-report.mjs, from the async suites' figures) is kept as it is.
const ASYNC_HEADING = '\n## Asynchronous delivery\n';
const previous = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
const asyncAt = previous.indexOf(ASYNC_HEADING);
const asyncSection = asyncAt >= 0 ? `\n${previous.slice(asyncAt).trim()}\n` : '';
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${markdown}${asyncSection}`);
process.stdout.write(
  `Written ${relative(root, outFile)}: ${n(r.events)} events, ${n(s.faults)} faults, lost ${res.lostUpdates}, doubled ${res.doubleApplications}, 5xx ${res.responses5xx}${fuzz ? `, fuzz 5xx ${fuzz.responses5xx}/${fuzz.runs}` : ''}${patchRun ? `; patch: ${n(patchRun.events)} events, lost ${patchRun.results.lostUpdates}, doubled ${patchRun.results.doubleApplications}, 5xx ${patchRun.results.responses5xx}` : ''}\n`,
);
