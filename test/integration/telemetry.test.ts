/**
 * Application Insights, end to end on loopback: the built app under the local host (which, like the
 * Functions host, records the request and hands the invocation its `traceparent`), the real
 * `applicationinsights` SDK exporting to a TLS ingestion emulator, with Entra-authenticated ingestion
 * through the managed-identity emulator. Statsbeat and the VM resource detector are off, the SDK's
 * remote-configuration poll ends at a refusing loopback proxy, and the loopback guard in the app process
 * fails any other connection.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type Envelope,
  type IngestionEmulator,
  LOOPBACK_TELEMETRY_SETTINGS,
  startIngestionEmulator,
} from '../../dev/emulators/ingestion.js';
import { makeReferral } from '../../dev/sandbox/seed.js';
import { extractedPackage, removePackage } from '../support/package.js';
import { type RefusingProxy, startRefusingProxy } from '../support/refusing-proxy.js';
import { isolatedEnv, type Stack, startProcess, startStack } from '../support/stack.js';

const NOTE = 'Private: customer CFO Wilhelmina Stroud prefers calls on +44 20 7946 0958';
const CUSTOMER = 'Stroud & Partners Holdings';

/** Settings every telemetry-enabled process gets in tests. */
function telemetryEnv(ingestion: IngestionEmulator, proxy: RefusingProxy): Record<string, string> {
  return {
    ...proxy.env,
    APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD',
    ...LOOPBACK_TELEMETRY_SETTINGS,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_BLRP_SCHEDULE_DELAY: '100',
    OTEL_METRIC_EXPORT_INTERVAL: '500',
  };
}

const tag = (envelope: Envelope, name: string) => envelope.tags?.[name];
const props = (envelope: Envelope) => envelope.data.baseData.properties ?? {};

afterAll(removePackage);

// The built app (dist/), and the deploy package with Application Insights bundled into it: the zip as Azure
// receives it, extracted and served by the local host.
describe.each([
  ['the built app', async () => undefined],
  ['the deploy package', async () => (await extractedPackage()).appDir],
])('%s, with APPLICATIONINSIGHTS_CONNECTION_STRING set', (_label, appDir) => {
  let ingestion: IngestionEmulator;
  let proxy: RefusingProxy;
  let stack: Stack;
  const referral = makeReferral({
    customerProfile: { name: CUSTOMER },
    details: { notes: 'old note', dealValue: 10, currency: 'USD' },
  });
  const traceId = randomBytes(16).toString('hex');
  const callerSpanId = randomBytes(8).toString('hex');
  const firstTraceId = randomBytes(16).toString('hex');
  let firstCorrelationId: string;
  let updated: { correlationId: string; eventId: string };
  let unchangedCorrelationId: string;
  let rejectedCorrelationId: string;

  beforeAll(async () => {
    ingestion = await startIngestionEmulator();
    proxy = await startRefusingProxy();
    const dir = await appDir();
    stack = await startStack(telemetryEnv(ingestion, proxy), dir === undefined ? {} : { appDir: dir });
    stack.sandbox.putReferral(referral);
    // The first event does not wait for the SDK (docs/telemetry.md#start-up): answered at once, its record is
    // kept until the SDK is ready, then sent in the event's trace.
    const first = await stack.post({}, { headers: { traceparent: `00-${firstTraceId}-${callerSpanId}-01` } });
    expect(first.status).toBe(400);
    firstCorrelationId = first.headers.get('ms-correlationid') ?? '';
    // The rest once it is on, so that their Partner Center calls are dependencies from the start.
    await vi.waitFor(async () => expect((await stack.health()).body.telemetry).toMatchObject({ status: 'on' }), {
      timeout: 30_000,
      interval: 50,
    });

    // Throttled once on the GET, then another writer gets in before the PUT (412): two retries, one update.
    stack.sandbox.injectFault({
      method: 'GET',
      referralId: referral.id,
      action: { type: 'status', status: 429, retryAfter: '0' },
    });
    stack.sandbox.injectFault({
      method: 'PUT',
      referralId: referral.id,
      action: { type: 'concurrent-edit', edit: (r) => Object.assign(r, { externalReferenceId: 'crm-edit' }) },
    });
    const eventId = `evt-${randomBytes(6).toString('hex')}`;
    const traced = await stack.post(
      { referralId: referral.id, eventId, dealValue: 125_000, currency: 'EUR', notes: NOTE },
      { headers: { traceparent: `00-${traceId}-${callerSpanId}-01` } },
    );
    expect(traced.status).toBe(200);
    expect(traced.body.outcome).toBe('updated');
    updated = { correlationId: traced.headers.get('ms-correlationid') ?? '', eventId };

    const again = await stack.post({ referralId: referral.id, dealValue: 125_000 });
    expect(again.body.outcome).toBe('unchanged');
    unchangedCorrelationId = again.headers.get('ms-correlationid') ?? '';

    const missing = await stack.post({ referralId: 'no-such-referral', substatus: 'Won' });
    expect(missing.status).toBe(404);
    rejectedCorrelationId = missing.headers.get('ms-correlationid') ?? '';

    await ingestion.waitFor(
      () =>
        ingestion.ofType('EventData').length >= 4 &&
        eventOf(firstCorrelationId) !== undefined &&
        ingestion.ofType('RequestData').length >= 4 &&
        ['referral.updates.applied', 'referral.updates.unchanged', 'referral.updates.rejected'].every((name) =>
          metricNames().includes(name),
        ),
    );
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await ingestion?.close();
    await proxy?.close();
  });

  const metricNames = () =>
    ingestion
      .ofType('MetricData')
      .flatMap((e) => (e.data.baseData.metrics as Array<{ name: string }> | undefined) ?? [])
      .map((m) => m.name);
  const metricTotal = (name: string) =>
    ingestion
      .ofType('MetricData')
      .flatMap((e) => (e.data.baseData.metrics as Array<{ name: string; value: number; count?: number }>) ?? [])
      .filter((m) => m.name === name)
      .reduce((sum, m) => sum + m.value, 0);
  const eventOf = (correlationId: string) =>
    ingestion.ofType('EventData').find((e) => props(e).correlationId === correlationId);

  it('records the request as the host does, in the caller’s trace', () => {
    const request = ingestion.ofType('RequestData').find((e) => tag(e, 'ai.operation.id') === traceId) as Envelope;
    expect(request).toBeDefined();
    expect(request.data.baseData.responseCode).toBe('200');
    expect(tag(request, 'ai.operation.parentId')).toBe(callerSpanId);
  });

  it('records each Partner Center call as a dependency of that request, with the event’s MS-CorrelationId', () => {
    const request = ingestion.ofType('RequestData').find((e) => tag(e, 'ai.operation.id') === traceId) as Envelope;
    const dependencies = ingestion.ofType('RemoteDependencyData').filter((e) => tag(e, 'ai.operation.id') === traceId);
    // GET (429), GET, PUT (412 after the concurrent edit), GET, PUT.
    expect(dependencies.map((d) => d.data.baseData.resultCode)).toEqual(['429', '200', '412', '200', '200']);
    for (const dependency of dependencies) {
      expect(dependency.data.baseData.type).toBe('Http');
      expect(String(dependency.data.baseData.data)).toContain(`/v1.0/engagements/referrals/${referral.id}`);
      expect(tag(dependency, 'ai.operation.parentId')).toBe(request.data.baseData.id);
      expect(props(dependency).correlationId).toBe(updated.correlationId);
    }
  });

  it('sends one ReferralUpdate event per event, with its dimensions and measurements', () => {
    const event = eventOf(updated.correlationId) as Envelope;
    expect(event.data.baseData.name).toBe('ReferralUpdate');
    expect(tag(event, 'ai.operation.id')).toBe(traceId);
    expect(props(event)).toMatchObject({
      referralId: referral.id,
      eventId: updated.eventId,
      outcome: 'updated',
      status: '200',
      attempts: '5',
      upstreamStatus: '200',
      idempotency: 'new',
    });
    expect(event.data.baseData.measurements).toMatchObject({ attempts: 5, retries: 1, conflicts: 1, throttles: 1 });
    expect(props(eventOf(unchangedCorrelationId) as Envelope)).toMatchObject({ outcome: 'unchanged', attempts: '1' });
    expect(props(eventOf(rejectedCorrelationId) as Envelope)).toMatchObject({
      outcome: 'rejected',
      code: 'referral_not_found',
      status: '404',
      upstreamStatus: '404',
    });
  });

  it('records the first event, answered before the SDK was ready, in its own trace', () => {
    const event = eventOf(firstCorrelationId) as Envelope;
    expect(event).toBeDefined();
    // In the trace the invocation was given: the local host gives the caller's only once the SDK's propagator is
    // registered (else a fresh one), so only its shape is checked here; test/unit/telemetry-start.test.ts checks
    // that a kept record carries its invocation's traceparent.
    expect(tag(event, 'ai.operation.id')).toMatch(/^[0-9a-f]{32}$/);
    expect(props(event)).toMatchObject({ outcome: 'rejected', status: '400' });
    expect(ingestion.ofType('EventData').filter((e) => props(e).correlationId === firstCorrelationId)).toHaveLength(1);
  });

  it('counts updates applied, unchanged and rejected, 412 re-merges, throttles, and upstream latency', async () => {
    await ingestion.waitFor(
      () =>
        metricNames().includes('referral.upstream.duration') && metricNames().includes('referral.upstream.throttled'),
    );
    expect(metricTotal('referral.updates.applied')).toBeGreaterThanOrEqual(1);
    expect(metricTotal('referral.updates.unchanged')).toBeGreaterThanOrEqual(1);
    // The warm-up's 400 and the 404.
    expect(metricTotal('referral.updates.rejected')).toBeGreaterThanOrEqual(2);
    expect(metricTotal('referral.upstream.precondition_failed')).toBeGreaterThanOrEqual(1);
    expect(metricTotal('referral.upstream.throttled')).toBeGreaterThanOrEqual(1);
    expect(metricNames()).not.toContain('referral.updates.failed');
  });

  it('says in /api/health that telemetry is on, with Entra ID ingestion', async () => {
    const health = await stack.health();
    expect(health.body.telemetry).toEqual({ status: 'on', ingestion: 'entra' });
    expect(health.body.status).toBe('ok');
  });

  it('authenticates ingestion with a managed-identity token for Azure Monitor', () => {
    expect(ingestion.requests.length).toBeGreaterThan(0);
    for (const request of ingestion.requests) {
      const token = /^Bearer (.+)$/.exec(request.authorization ?? '')?.[1] ?? '';
      expect(stack.identity.isIssued(token)).toBe(true);
      const issued = stack.identity.issued.find((t) => t.token === token);
      expect(issued?.resource).toMatch(/^https:\/\/monitor\.azure\.com\/?$/);
    }
  });

  it('sends no field values, customer data or tokens, and nothing off loopback', () => {
    const everything = JSON.stringify(ingestion.envelopes);
    for (const secret of [NOTE, CUSTOMER, 'Wilhelmina', 'crm-edit', ...stack.identity.issued.map((t) => t.token)]) {
      expect(everything).not.toContain(secret);
    }
    expect(everything).not.toMatch(/statsbeat/i);
    expect(stack.host.output()).not.toContain('loopback guard');
    // The SDK's own configuration poll, if it came yet, ended at the refusing loopback proxy.
    for (const target of proxy.refused) expect(target).toBe('settings.sdk.monitor.azure.com:443');
  });
});

describe('module loading', () => {
  /** How many heavy modules a fresh process has loaded once the app's entry points are imported and telemetry started. */
  async function heavyModulesLoaded(env: Record<string, string>): Promise<number> {
    const script = `
      import { createRequire } from 'node:module';
      const { loadApp } = await import('./dist/dev/host/host.js');
      await loadApp('.');
      await (await import('./dist/shared/runtime.js')).appTelemetry();
      const loaded = Object.keys(createRequire(import.meta.url).cache)
        .filter((p) => /applicationinsights|@opentelemetry|@azure[\\\\/]monitor/.test(p));
      console.log('LOADED=' + loaded.length + ';');
    `;
    const child = startProcess(['--input-type=module', '-e', script], isolatedEnv(env));
    const [, count] = await child.waitFor(/LOADED=(\d+);/);
    await child.stop();
    return Number(count);
  }

  it('loads none of Application Insights or OpenTelemetry when no connection string is set', async () => {
    expect(await heavyModulesLoaded({})).toBe(0);
  });

  it('keeps the SDK itself off the network: past its first statsbeat and configuration rounds (15 s), only the configuration poll was tried, at the loopback proxy', async () => {
    const ingestion = await startIngestionEmulator();
    const proxy = await startRefusingProxy();
    try {
      const script = `
        const { loadApp } = await import('./dist/dev/host/host.js');
        await loadApp('.');
        await (await import('./dist/shared/runtime.js')).appTelemetry();
        setTimeout(() => console.log('WAITED'), 17_000);
      `;
      const child = startProcess(['--input-type=module', '-e', script], isolatedEnv(telemetryEnv(ingestion, proxy)));
      await child.waitFor(/WAITED/, 30_000);
      await child.stop();
      // Without APPLICATION_INSIGHTS_NO_STATSBEAT, statsbeat's first export (westus-0.in.applicationinsights…) is here too.
      expect(new Set(proxy.refused)).toEqual(new Set(['settings.sdk.monitor.azure.com:443']));
      expect(child.output()).not.toContain('loopback guard');
    } finally {
      await ingestion.close();
      await proxy.close();
    }
  }, 40_000);

  it('writes no offline retry files to the temp directory while ingestion is unreachable (the control, with the exporter’s default, does)', async () => {
    // Ingestion at a closed loopback port: every export fails as "no response", which the exporter retries, then
    // (offline storage on) writes to the temp directory (docs/telemetry.md#offline-storage).
    const env = (tmp: string) =>
      isolatedEnv({
        APPLICATIONINSIGHTS_CONNECTION_STRING:
          'InstrumentationKey=00000000-0000-4000-8000-000000000000;IngestionEndpoint=https://127.0.0.1:9/',
        ...LOOPBACK_TELEMETRY_SETTINGS,
        HTTPS_PROXY: 'http://127.0.0.1:9',
        NO_PROXY: '127.0.0.1,localhost,::1',
        OTEL_BLRP_SCHEDULE_DELAY: '100',
        TMPDIR: tmp,
        TMP: tmp,
        TEMP: tmp,
      });
    const emitAndWait = (ms: number, until: string) => `
      const { existsSync, readdirSync } = await import('node:fs');
      const { logs } = await import('@opentelemetry/api-logs');
      for (let i = 0; i < 50; i++) logs.getLogger('t').emit({ body: 'x', attributes: { 'microsoft.custom_event.name': 'T' } });
      const files = () => readdirSync(process.env.TMPDIR, { recursive: true }).filter((f) => String(f).endsWith('.ai.json'));
      const end = Date.now() + ${ms};
      while (Date.now() < end && !(${until})) await new Promise((r) => setTimeout(r, 200));
      console.log('FILES=' + files().length + ';');
      process.exit(0);
    `;
    const appDir = mkdtempSync(join(tmpdir(), 'telemetry-app-'));
    const controlDir = mkdtempSync(join(tmpdir(), 'telemetry-control-'));
    try {
      const app = startProcess(
        [
          '--input-type=module',
          '-e',
          `const { loadApp } = await import('./dist/dev/host/host.js');
           await loadApp('.');
           await (await import('./dist/shared/runtime.js')).appTelemetry();
           ${emitAndWait(80_000, 'existsSync(process.env.STOP_FILE)')}`,
        ],
        { ...env(appDir), STOP_FILE: join(controlDir, 'stop') },
      );
      const control = startProcess(
        [
          '--input-type=module',
          '-e',
          `const ai = (await import('applicationinsights')).default;
           ai.useAzureMonitor({ azureMonitorExporterOptions: { connectionString: process.env.APPLICATIONINSIGHTS_CONNECTION_STRING }, enableLiveMetrics: false });
           ${emitAndWait(60_000, 'files().length > 0')}`,
        ],
        env(controlDir),
      );
      // Both started together, with the same retry schedule: once the control has written its files, and a
      // little after, the app has been through the same failed exports.
      const [, controlFiles] = await control.waitFor(/FILES=(\d+);/, 70_000);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      writeFileSync(join(controlDir, 'stop'), '');
      const [, appFiles] = await app.waitFor(/FILES=(\d+);/, 10_000);
      expect(Number(controlFiles)).toBeGreaterThan(0);
      expect(Number(appFiles)).toBe(0);
      expect(readdirSync(appDir, { recursive: true }).filter((f) => String(f).endsWith('.ai.json'))).toEqual([]);
      expect(app.output()).not.toContain('loopback guard');
    } finally {
      rmSync(appDir, { recursive: true, force: true });
      rmSync(controlDir, { recursive: true, force: true });
    }
  }, 90_000);

  it('loads them when one is set (the check above can fail)', async () => {
    const ingestion = await startIngestionEmulator();
    const proxy = await startRefusingProxy();
    try {
      expect(await heavyModulesLoaded(telemetryEnv(ingestion, proxy))).toBeGreaterThan(100);
    } finally {
      await ingestion.close();
      await proxy.close();
    }
  });
});
