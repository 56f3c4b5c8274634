/**
 * Application Insights off the events' path (docs/telemetry.md#start-up): events run and are answered while
 * the SDK starts; their records are kept (bounded) and emitted, in order and in their own trace, once it is
 * ready, or dropped and counted when it fails. Counts and order only, never timings.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import type { EventRecord } from '../../shared/telemetry/event-record.js';
import {
  createTelemetryStarter,
  PENDING_LIMIT,
  type PendingRecord,
  type StartedTelemetry,
} from '../../shared/telemetry/telemetry.js';
import { processEvent } from '../../shared/use-cases/process-event.js';
import { deferred, GET, PUT, ScriptedPartnerCenter } from '../support/scripted-partner-center.js';
import { eventRequest, REFERRAL_ID, referral, testApp } from '../support/use-cases.js';

const TRACE = (n: number) => `00-${String(n).padStart(32, 'a')}-${'b'.repeat(16)}-01`;
const NEVER = { graceMs: 1_000_000, latestMs: 1_000_000 };

/** An SDK stand-in: what it was handed, in order. */
function fakeSdk() {
  const late: PendingRecord[] = [];
  const direct: EventRecord[] = [];
  const sdk: StartedTelemetry = {
    inInvocation: (_traceParent, work) => work(),
    recordEvent: (record) => direct.push(record),
    recordLate: (pending) => late.push(pending),
  };
  return { sdk, late, direct };
}

const record = (correlationId: string) => ({ event: 'referral-update', correlationId, status: 200 }) as EventRecord;

describe('telemetry start-up', () => {
  it('answers the first event while the SDK is still starting, then emits its record in its trace', async () => {
    const { sdk, late } = fakeSdk();
    const load = deferred<StartedTelemetry>();
    let loads = 0;
    const starter = createTelemetryStarter(
      () => {
        loads++;
        return load.promise;
      },
      () => {},
      { graceMs: 0, latestMs: 1_000_000 },
    );
    const app = {
      ...testApp(new ScriptedPartnerCenter([GET.ok(referral()), PUT.ok()])),
      telemetry: () => starter.current(),
    };
    const invocation = { log() {}, warn() {}, error() {}, traceContext: { traceParent: TRACE(1) } };

    const response = await processEvent(
      eventRequest({ body: { referralId: REFERRAL_ID, status: 'Active', dealValue: 1200 } }),
      invocation,
      app,
    );
    expect(response.status).toBe(200);
    expect(starter.status()).toBe('starting');
    expect(starter.counts()).toEqual({ pending: 1, flushed: 0, dropped: 0 });

    // Idle after the answer: the SDK starts; until it is ready, the record waits.
    await vi.waitFor(() => expect(loads).toBe(1));
    expect(late).toEqual([]);

    load.resolve(sdk);
    await starter.ready();
    expect(starter.status()).toBe('on');
    expect(starter.counts()).toEqual({ pending: 0, flushed: 1, dropped: 0 });
    expect(late).toHaveLength(1);
    expect(late[0]?.traceParent).toBe(TRACE(1));
    expect(late[0]?.record).toMatchObject({ outcome: 'updated', status: 200, referralId: REFERRAL_ID, attempts: 2 });
    expect(late[0]?.timeMs).toBeTypeOf('number');
    // From now on events use the SDK directly.
    expect(starter.current()).toBe(sdk);
  });

  it('keeps records in the order they were made, each with its own traceparent', async () => {
    const { sdk, late } = fakeSdk();
    const load = deferred<StartedTelemetry>();
    const starter = createTelemetryStarter(
      () => load.promise,
      () => {},
      NEVER,
    );
    for (const n of [1, 2, 3]) {
      const telemetry = starter.current();
      await telemetry.inInvocation(TRACE(n), async () => telemetry.recordEvent(record(`c${n}`), [n]));
    }
    // No traceparent: emitted with none.
    starter.current().recordEvent(record('c4'), []);
    const ready = starter.ready();
    load.resolve(sdk);
    await ready;
    expect(late.map((p) => [p.record.correlationId, p.traceParent, p.upstreamDurationsMs])).toEqual([
      ['c1', TRACE(1), [1]],
      ['c2', TRACE(2), [2]],
      ['c3', TRACE(3), [3]],
      ['c4', undefined, []],
    ]);
  });

  it('an event that began before the SDK was ready and ends after is emitted in its trace', async () => {
    const { sdk, late, direct } = fakeSdk();
    const load = deferred<StartedTelemetry>();
    const starter = createTelemetryStarter(
      () => load.promise,
      () => {},
      NEVER,
    );
    const telemetry = starter.current();
    const gate = deferred();
    const running = telemetry.inInvocation(TRACE(7), async () => {
      await gate.promise;
      telemetry.recordEvent(record('late'), []);
    });
    const ready = starter.ready();
    load.resolve(sdk);
    await ready;
    gate.resolve();
    await running;
    expect(direct).toEqual([]);
    expect(late.map((p) => [p.record.correlationId, p.traceParent])).toEqual([['late', TRACE(7)]]);
  });

  it(`keeps at most ${PENDING_LIMIT} records, counting the ones it drops`, async () => {
    const { sdk, late } = fakeSdk();
    const load = deferred<StartedTelemetry>();
    const starter = createTelemetryStarter(
      () => load.promise,
      () => {},
      NEVER,
    );
    for (let i = 0; i < PENDING_LIMIT + 5; i++) starter.current().recordEvent(record(`c${i}`), []);
    expect(starter.counts()).toEqual({ pending: PENDING_LIMIT, flushed: 0, dropped: 5 });
    const ready = starter.ready();
    load.resolve(sdk);
    await ready;
    expect(late).toHaveLength(PENDING_LIMIT);
    expect(late[0]?.record.correlationId).toBe('c0');
    expect(starter.counts()).toEqual({ pending: 0, flushed: PENDING_LIMIT, dropped: 5 });
  });

  it('drops and counts the kept records when the SDK fails to start, says so once, and runs without telemetry', async () => {
    const lines: string[] = [];
    const starter = createTelemetryStarter(
      () => Promise.reject(new TypeError('connection string InstrumentationKey=secret')),
      (line) => lines.push(line),
      NEVER,
    );
    for (const n of [1, 2]) starter.current().recordEvent(record(`c${n}`), []);
    await starter.ready();
    expect(starter.status()).toBe('failed');
    expect(starter.counts()).toEqual({ pending: 0, flushed: 0, dropped: 2 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('failed to start (TypeError); 2 event record(s) dropped');
    expect(lines[0]).not.toContain('secret');
    // A no-op from now on: nothing more is kept.
    starter.current().recordEvent(record('c3'), []);
    expect(starter.counts().pending).toBe(0);
  });

  it('starts the SDK only once no event is in flight', async () => {
    const { sdk } = fakeSdk();
    let loads = 0;
    const starter = createTelemetryStarter(
      async () => {
        loads++;
        return sdk;
      },
      () => {},
      { graceMs: 0, latestMs: 1_000_000 },
    );
    const gate = deferred();
    const telemetry = starter.current();
    const running = telemetry.inInvocation(TRACE(1), () => gate.promise);
    // Past the grace period, but busy.
    await sleep(20);
    expect(loads).toBe(0);
    gate.resolve();
    await running;
    await vi.waitFor(() => expect(loads).toBe(1));
  });

  it('starts the SDK at the latest after latestMs, busy or not: a steady stream of events never starves it', async () => {
    const { sdk } = fakeSdk();
    let loads = 0;
    const starter = createTelemetryStarter(
      async () => {
        loads++;
        return sdk;
      },
      () => {},
      { graceMs: 1_000_000, latestMs: 0 },
    );
    const gate = deferred();
    const running = starter.current().inInvocation(TRACE(1), () => gate.promise);
    // Still in flight, and still within the grace period: only the latest bound can start it.
    await vi.waitFor(() => expect(loads).toBe(1));
    gate.resolve();
    await running;
  });

  it('is a no-op, importing nothing, when not configured', async () => {
    const starter = createTelemetryStarter(undefined);
    expect(starter.status()).toBe('off');
    starter.current().recordEvent(record('c'), []);
    expect(starter.counts()).toEqual({ pending: 0, flushed: 0, dropped: 0 });
    expect(await starter.ready()).toBe(starter.current());
  });
});
