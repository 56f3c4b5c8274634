/**
 * The reliability run's driver: sets up 50 fresh referrals, then delivers the plan's steps through the
 * built app while the sandbox injects seeded random faults, checking every answer and every step as it goes.
 *
 * How the driver keeps the model exact: the events of one referral are delivered one step after another
 * (a step = one event's deliveries: the first one and, for ~20 %, a concurrent copy; or a later redelivery;
 * or a reused id), each delivery retried like Power Automate (up to 4 more times on 409/429/502/503/504,
 * same id, same body). Different referrals run in parallel, at most IN_FLIGHT requests at a time. So every
 * write the sandbox stores for a referral happens during exactly one step of that referral, and the model
 * can be fed answers in the order the referral saw them.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeReferral } from '../../../dev/sandbox/seed.js';
import { type AppliedWrite, RANDOM_FAULT_KINDS, type SandboxStats } from '../../../dev/sandbox/server.js';
import type { Stack } from '../stack.js';
import { type Attempt, checkAttempt, type Delivery, type DeliveryRole, type Figures, newFigures } from './answers.js';
import { adapterFields, isRecord, type JsonRecord, newModel, type RefModel } from './model.js';
import { CALLER_RETRIES, CALLER_RETRY_DELAY_MS, FAULT_RATE, IN_FLIGHT, REFERRALS, RETRYABLE } from './parameters.js';
import { buildPlan, type PlannedEvent, type Step } from './plan.js';
import { checkStep, type Track } from './step-checks.js';
import { Violations } from './violations.js';

/** At most `max` tasks at a time; a finished task hands its slot to the next waiter. */
class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** What a run leaves for the checks after it: the plan, the model, the answers and the sandbox's final state. */
export interface Run {
  seed: number;
  referralIds: string[];
  /** Each referral as stored at setup. */
  snapshots: Map<string, JsonRecord>;
  events: PlannedEvent[];
  chains: Step[][];
  models: Map<string, RefModel>;
  tracks: Map<string, Track>;
  figures: Figures;
  violations: Violations;
  stats: SandboxStats;
  /** Each referral as stored at the end (undefined if gone). */
  finals: Map<string, JsonRecord | undefined>;
  /** Each referral's applied writes at the end. */
  ledgers: Map<string, readonly AppliedWrite[]>;
  driverMs: number;
}

/** `count` (50) fresh referrals, half New/Pending, half Active/Accepted, with unknown fields: their ids and snapshots. */
function setUp(stack: Stack, seed: number, count: number) {
  const { sandbox } = stack;
  const referralIds: string[] = [];
  const snapshots = new Map<string, JsonRecord>();
  for (let r = 0; r < count; r++) {
    const isNew = r % 2 === 0;
    const referral = makeReferral(
      isNew ? {} : { status: 'Active', substatus: 'Accepted', acceptedDateTime: '2026-10-02T03:04:05.6789012Z' },
    );
    const details = isRecord(referral.details) ? referral.details : {};
    const attributes = isRecord(referral.customAttributes) ? referral.customAttributes : {};
    referral.details = {
      ...details,
      partnerExtension: { scoring: { model: 'v2', weights: [0.25, 0.5, 0.125], flags: { hot: r % 3 === 0 } } },
    };
    referral.customAttributes = {
      ...attributes,
      reliabilityProbe: { batch: seed, nested: { deeper: { list: [{ k: 'v', n: 1.5e-7 }, null, true] } } },
    };
    referral.unknownTopLevel = { since: '2026-10-10T10:10:10.1234567Z', amounts: [1, 2.5, 1e21], empty: {} };
    sandbox.putReferral(referral);
    referralIds.push(referral.id);
    const stored = sandbox.getReferral(referral.id);
    if (stored === undefined) throw new Error(`setup: referral ${referral.id} was not stored`);
    snapshots.set(referral.id, stored);
  }
  return { referralIds, snapshots };
}

/**
 * Runs the whole plan of `seed` over `referrals` referrals against the stack (whose sandbox it resets) and returns
 * what the checks need.
 */
export async function drive(stack: Stack, seed: number, referrals = REFERRALS): Promise<Run> {
  const { sandbox } = stack;
  sandbox.reset();
  const { referralIds, snapshots } = setUp(stack, seed, referrals);
  const { chains, events } = buildPlan(seed, referralIds, (r) => r % 2 === 0);
  const models = new Map<string, RefModel>(referralIds.map((id) => [id, newModel(id, snapshots.get(id))]));
  const tracks = new Map<string, Track>(events.map((event) => [event.id, { event, unconfirmed: 0, writes: 0 }]));
  const caller = new Caller(stack, newFigures(), new Violations());

  // Referrals in parallel, the steps of one referral one after another.
  sandbox.setRandomFaults({ rate: FAULT_RATE, seed, kinds: RANDOM_FAULT_KINDS });
  const driverStarted = performance.now();
  await Promise.all(
    chains.map(async (chain) => {
      for (const step of chain) await runStep(stack, caller, seed, step, models, tracks);
    }),
  );
  const driverMs = performance.now() - driverStarted;
  sandbox.setRandomFaults(undefined);
  const stats: SandboxStats = sandbox.stats();
  return {
    seed,
    referralIds,
    snapshots,
    events,
    chains,
    models,
    tracks,
    figures: caller.figures,
    violations: caller.violations,
    stats,
    finals: new Map(referralIds.map((id) => [id, sandbox.getReferral(id)])),
    ledgers: new Map(referralIds.map((id) => [id, [...sandbox.appliedWrites(id)]])),
    driverMs,
  };
}

/** The callers: each delivery posts the event and retries like Power Automate, at most IN_FLIGHT at a time. */
class Caller {
  private readonly limiter = new Limiter(IN_FLIGHT);
  constructor(
    private readonly stack: Stack,
    readonly figures: Figures,
    readonly violations: Violations,
  ) {}

  private post(eventId: string, bodyText: string): Promise<Attempt> {
    const { figures, stack } = this;
    return this.limiter.run(async () => {
      figures.httpRequests++;
      try {
        const response = await fetch(`${stack.hostUrl}/api/referral-updates`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'webhook-id': eventId },
          body: bodyText,
        });
        const text = await response.text();
        let body: JsonRecord | undefined;
        try {
          const parsed: unknown = JSON.parse(text);
          if (isRecord(parsed)) body = parsed;
        } catch {
          body = undefined;
        }
        return {
          status: response.status,
          text,
          contentType: response.headers.get('content-type') ?? '',
          replayed: response.headers.get('idempotent-replayed') === 'true',
          body,
        };
      } catch (error) {
        return { status: 0, text: String(error), contentType: '', replayed: false, body: undefined };
      }
    });
  }

  /** One caller: the first attempt and up to CALLER_RETRIES more on a retryable answer. */
  async deliver(event: PlannedEvent, role: DeliveryRole, bodyText: string): Promise<Delivery> {
    const { figures } = this;
    figures.deliveries[role]++;
    const attempts: Attempt[] = [];
    for (let attempt = 0; attempt <= CALLER_RETRIES; attempt++) {
      if (attempt > 0) {
        figures.callerRetries++;
        await sleep(CALLER_RETRY_DELAY_MS * attempt);
      }
      const answer = await this.post(event.id, bodyText);
      attempts.push(answer);
      checkAttempt(event, role, answer, figures, this.violations.violate);
      if (answer.status !== 0 && !RETRYABLE.has(answer.status)) break;
    }
    const last = attempts.at(-1);
    if (last !== undefined && (last.status === 0 || RETRYABLE.has(last.status))) {
      figures.deliveriesFailedAfterRetries++;
    }
    return { role, attempts };
  }
}

/** One step: its deliveries, then the checks of what they answered and wrote. */
async function runStep(
  stack: Stack,
  caller: Caller,
  seed: number,
  step: Step,
  models: Map<string, RefModel>,
  tracks: Map<string, Track>,
): Promise<void> {
  const { sandbox } = stack;
  const event = step.event;
  const referralId = event.referralId;
  const model = models.get(referralId);
  const track = tracks.get(event.id);
  if (model === undefined || track === undefined) throw new Error(`no model for ${event.id}`);
  const beforeDoc = sandbox.getReferral(referralId);
  const before = adapterFields(beforeDoc);
  const writesBefore = sandbox.appliedWrites(referralId).length;

  let deliveries: Delivery[];
  if (step.type === 'reuse') {
    // Only an id whose answer is stored is "used"; a retryable answer frees the id (documented).
    if (track.original === undefined) {
      caller.figures.reusesSkipped++;
      return;
    }
    deliveries = [await caller.deliver(event, 'reuse', step.altered.bodyText)];
  } else if (step.type === 'redeliver') {
    deliveries = [await caller.deliver(event, 'redelivery', event.bodyText)];
  } else {
    deliveries = await Promise.all([
      caller.deliver(event, 'first', event.bodyText),
      ...(step.copy ? [caller.deliver(event, 'copy', event.bodyText)] : []),
    ]);
  }

  const afterDoc = sandbox.getReferral(referralId);
  const after = adapterFields(afterDoc);
  const writes = sandbox.appliedWrites(referralId).slice(writesBefore);
  const where = `seed ${seed}, referral ${referralId}, event ${event.id} (${event.kind}, ${step.type}${step.type === 'deliver' && step.copy ? ' + concurrent copy' : ''})`;
  const attempts = deliveries.flatMap((delivery) => delivery.attempts);
  checkStep(step, model, track, { attempts, before, after, writes, where }, caller.violations.violate);
}
