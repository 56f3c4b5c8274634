/**
 * A small local Functions host: loads the built app the way the worker does and serves its HTTP
 * functions on loopback, with no `func` and no Azure.
 *
 * 1. `@azure/functions-core` resolves to a stub (functions-core-stub.cts), so `@azure/functions` leaves
 *    test mode and every `app.http(...)` reaches `registerFunction` exactly as in Azure.
 * 2. The entry points are the files matched by `package.json` `main` (a glob, like the worker), imported
 *    in plain Node: an ESM/CommonJS mistake fails here as it would in Azure.
 * 3. Each request becomes a real `HttpRequest` + `InvocationContext`; the handler's answer is written back.
 * 4. Like the Functions host, each invocation gets a W3C trace context (the caller's `traceparent` as its
 *    parent), and, when Application Insights is configured, the host records the request: as a server
 *    span through the app's OpenTelemetry providers, so the app's dependencies nest under it.
 * 5. Like the Functions host, a route whose first segment is `admin` is refused ("The specified route conflicts
 *    with one or more built in routes."): that prefix is the host's own API, whatever the route prefix.
 * 6. Timer triggers run on their NCRONTAB schedule (UTC; a `%SETTING%` schedule is read from the
 *    environment, as the host reads app settings). `runOnStartup` and `useMonitor` are ignored: no
 *    missed-run catch-up, no schedule leases. `POST /admin/functions/{name}` runs one now and answers
 *    202, as the Functions host does for a non-HTTP function
 *    (https://learn.microsoft.com/azure/azure-functions/functions-manually-run-non-http); tests can also
 *    call `runTimer(name)` and await the invocation.
 * 7. Like the Functions host, the request body is read while it streams in, up to the platform's limit of 100 MB
 *    (https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#limits): a larger
 *    one gets `413` and its connection is closed, never read to the end (`Content-Length` above it: not read at
 *    all). The app's own `MAX_BODY_BYTES` then applies in the app. Routes match without regard to case, and a
 *    `Host` header that is not a host answers `400`, as in Azure.
 * 8. Storage queue triggers (`app.storageQueue(...)`) poll their queue on the connection's storage account
 *    (Azurite locally) as the Functions host does, with host.json `extensions.queues`: base64, trigger metadata,
 *    `maxDequeueCount` and the `-poison` queue (queue-trigger.ts). `close()` stops polling and waits for the
 *    invocations in flight. Dev/test only, from the environment: `LOCAL_HOST_QUEUE_LEASE_SECONDS` (how long a
 *    received message stays invisible, 600 as in the Functions host) and `LOCAL_HOST_QUEUE_MAX_POLLING_MS`.
 * Like `func start`, keys are not enforced locally, unless a master key is given (`masterKey`, like
 * `func start --enableAuth`): then `function` routes take the master key and `admin` routes (and the host's
 * own `/admin/…` API) only the master key, in the `x-functions-key` header or the `code` query parameter,
 * and anything else gets an empty 401 as in Azure.
 */
import { randomFillSync, randomUUID, timingSafeEqual } from 'node:crypto';
import { globSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import Module, { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from '@azure/functions';
import { parseNcrontab, type Schedule } from '../../shared/core/ncrontab.js';
import { parseTraceParent } from '../../shared/telemetry/telemetry.js';
import { wireAnswer } from './http-answer.js';
import {
  defaultQueuesOptions,
  type LocalQueueSettings,
  localHostQueueSettings,
  type QueueFunction,
  type QueuesOptions,
  readQueuesOptions,
  startQueueListeners,
} from './queue-trigger.js';

export interface HttpFunction {
  name: string;
  methods: string[];
  authLevel: string;
  route: string;
  handler: (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit | unknown>;
}

export interface TimerFunction {
  name: string;
  /** As registered: an NCRONTAB expression or `%SETTING%`. */
  schedule: string;
  handler: (timer: Timer, context: InvocationContext) => Promise<unknown>;
}

export interface LoadedApp {
  appDir: string;
  main: string;
  entryPoints: string[];
  functions: HttpFunction[];
  /** Functions the Functions host would refuse to start, with its reason. */
  refused: Array<{ name: string; reason: string }>;
  timers: TimerFunction[];
  queues: QueueFunction[];
}

export type LogLine = (level: string, functionName: string, message: string) => void;

export interface HostOptions {
  appDir: string;
  port?: number;
  /** Route prefix (host.json `extensions.http.routePrefix`), `api` by default. */
  routePrefix?: string;
  /** Enforce keys with this master key (as `func start --enableAuth` does with the app's keys). Default: none. */
  masterKey?: string;
  /** The largest request body the host reads; {@link HOST_MAX_REQUEST_BYTES} (the platform's) by default. */
  maxRequestBytes?: number;
  /**
   * Queue trigger options over host.json `extensions.queues` (itself over the Functions host's defaults) and over
   * the local host's dev/test settings from the environment (`LOCAL_HOST_QUEUE_LEASE_SECONDS`,
   * `LOCAL_HOST_QUEUE_MAX_POLLING_MS`, queue-trigger.ts).
   */
  queues?: Partial<QueuesOptions & LocalQueueSettings>;
  log?: LogLine;
}

export interface RunningHost {
  readonly url: string;
  readonly app: LoadedApp;
  /** The queue functions polling, with their resolved queue names (a function missing here was not started). */
  readonly queues: ReadonlyArray<{ name: string; queue: string }>;
  /** Run the timer function `name` now, as its schedule would; resolves when the invocation ends. */
  runTimer(name: string): Promise<void>;
  close(): Promise<void>;
}

/** The platform's request length limit of HTTP triggers, 100 MB (see the header comment). */
export const HOST_MAX_REQUEST_BYTES = 104_857_600;

const requireHere = createRequire(import.meta.url);
const STUB_PATH = fileURLToPath(new URL('./functions-core-stub.cjs', import.meta.url));

function installFunctionsCoreStub(): void {
  const loader = Module as unknown as {
    _resolveFilename: (request: string, ...rest: unknown[]) => string;
    __functionsCoreStub?: boolean;
  };
  if (loader.__functionsCoreStub) return;
  const original = loader._resolveFilename;
  loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    return request === '@azure/functions-core' ? STUB_PATH : original.call(this, request, ...rest);
  };
  loader.__functionsCoreStub = true;
}

interface StubRegistration {
  metadata: {
    name: string;
    bindings: Record<
      string,
      {
        type?: string;
        direction?: string;
        methods?: string[];
        authLevel?: string;
        route?: string;
        schedule?: string;
        queueName?: string;
        connection?: string;
      }
    >;
  };
  handler: (...args: never[]) => Promise<unknown>;
}

/** Loads the app's entry points (package.json `main`) and returns the HTTP functions they registered. */
export async function loadApp(appDir: string): Promise<LoadedApp> {
  installFunctionsCoreStub();
  const manifest = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as { main?: string };
  const main = manifest.main;
  if (!main) throw new Error(`${join(appDir, 'package.json')} has no "main": the worker would load no functions.`);
  const entryPoints = globSync(main, { cwd: appDir }).sort();
  if (entryPoints.length === 0) {
    throw new Error(`package.json "main" (${main}) matches no file in ${appDir}: run "npm run build" first.`);
  }
  for (const entry of entryPoints) await import(pathToFileURL(join(appDir, entry)).href);
  const stub = requireHere(STUB_PATH) as { registrations: StubRegistration[] };
  const all = stub.registrations.flatMap(({ metadata, handler }): HttpFunction[] => {
    const trigger = Object.values(metadata.bindings).find((b) => b.type === 'httpTrigger');
    if (!trigger) return [];
    return [
      {
        name: metadata.name,
        methods: (trigger.methods ?? ['GET', 'POST']).map((m) => m.toUpperCase()),
        authLevel: trigger.authLevel ?? 'function',
        route: trigger.route ?? metadata.name,
        handler: handler as HttpFunction['handler'],
      },
    ];
  });
  const timers = stub.registrations.flatMap(({ metadata, handler }): TimerFunction[] => {
    const trigger = Object.values(metadata.bindings).find((b) => b.type === 'timerTrigger');
    if (!trigger) return [];
    return [{ name: metadata.name, schedule: trigger.schedule ?? '', handler: handler as TimerFunction['handler'] }];
  });
  const queues = stub.registrations.flatMap(({ metadata, handler }): QueueFunction[] => {
    const entry = Object.entries(metadata.bindings).find(([, b]) => b.type === 'queueTrigger');
    if (!entry) return [];
    const [bindingName, trigger] = entry;
    return [
      {
        name: metadata.name,
        queueName: trigger.queueName ?? '',
        connection: trigger.connection ?? '',
        binding: { ...trigger, name: bindingName, type: 'queueTrigger' },
        handler: handler as QueueFunction['handler'],
      },
    ];
  });
  const builtIn = (fn: HttpFunction) => fn.route.split('/')[0]?.toLowerCase() === 'admin';
  return {
    appDir,
    main,
    entryPoints,
    functions: all.filter((fn) => !builtIn(fn)),
    timers,
    queues,
    refused: all
      .filter(builtIn)
      .map(({ name }) => ({ name, reason: 'The specified route conflicts with one or more built in routes.' })),
  };
}

/** The key a request presents: the `x-functions-key` header, else the `code` query parameter. */
function presentedKey(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers['x-functions-key'];
  return (typeof header === 'string' ? header : undefined) ?? url.searchParams.get('code') ?? undefined;
}

/** Whether the request may call a function of `authLevel`; its key is looked at only when keys are enforced. */
function authorized(authLevel: string, req: IncomingMessage, url: URL, masterKey: string | undefined): boolean {
  if (masterKey === undefined || authLevel.toLowerCase() === 'anonymous') return true;
  const key = presentedKey(req, url);
  if (key === undefined) return false;
  const a = Buffer.from(key);
  const b = Buffer.from(masterKey);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The timer's schedule, `%SETTING%` resolved from the environment; throws as the host's indexing would. */
export function timerSchedule(timer: TimerFunction, env: NodeJS.ProcessEnv = process.env): Schedule {
  const setting = /^%([^%]+)%$/.exec(timer.schedule.trim())?.[1];
  const expression = setting === undefined ? timer.schedule : env[setting];
  if (expression === undefined || expression.trim() === '') {
    throw new Error(
      `The function "${timer.name}": '%${setting}%' does not resolve to a value (app setting ${setting}).`,
    );
  }
  try {
    return parseNcrontab(expression);
  } catch (error) {
    throw new Error(`The function "${timer.name}" has an invalid schedule: ${(error as Error).message}`);
  }
}

/** A path segment percent-decoded, or undefined when it is malformed (`%zz`): no route matches it. */
function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

type RouteSegment = { literal: string } | { literal?: undefined; name: string; catchAll: boolean; optional: boolean };

/** A route template's segments, parsed once when the host starts. */
function compileRoute(template: string): RouteSegment[] {
  return template
    .split('/')
    .filter(Boolean)
    .map((segment): RouteSegment => {
      const param = /^\{(\*?)([A-Za-z_][\w]*)(?::[^}?]*)?(\??)\}$/.exec(segment);
      if (!param) return { literal: segment.toLowerCase() };
      const [, catchAll, name, optional] = param as unknown as [string, string, string, string];
      return { name, catchAll: catchAll !== '', optional: optional !== '' };
    });
}

/**
 * `route` templates: literal segments (matched without regard to case), `{name}`, `{name?}` and a trailing
 * `{*rest}`, against the request path's non-empty segments.
 */
function matchRoute(want: readonly RouteSegment[], got: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const segment = want[i] as RouteSegment;
    const value = got[i];
    if (segment.literal !== undefined) {
      if (value === undefined || value.toLowerCase() !== segment.literal) return undefined;
      continue;
    }
    if (segment.catchAll) {
      const rest = got.slice(i).map(safeDecode);
      if (rest.includes(undefined)) return undefined;
      params[segment.name] = rest.join('/');
      return params;
    }
    if (value === undefined) return segment.optional ? params : undefined;
    const decoded = safeDecode(value);
    if (decoded === undefined) return undefined;
    params[segment.name] = decoded;
  }
  return got.length === want.length ? params : undefined;
}

/**
 * Random ids in hex (trace and span ids), cut from a pool refilled 4 KiB at a time: one call to the system's
 * random source per few hundred requests instead of two per request.
 */
const RANDOM_POOL = Buffer.alloc(4096);
let randomOffset = RANDOM_POOL.length;
function randomHex(bytes: number): string {
  if (randomOffset + bytes > RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomOffset = 0;
  }
  const hex = RANDOM_POOL.toString('hex', randomOffset, randomOffset + bytes);
  randomOffset += bytes;
  return hex;
}

const defaultLog: LogLine = (level, functionName, message) => {
  const line = `[${new Date().toISOString()}] ${functionName} ${level}: ${message}\n`;
  (level === 'error' || level === 'critical' ? process.stderr : process.stdout).write(line);
};

interface RecordedRequest {
  /** The W3C `traceparent` the invocation receives in `InvocationContext.traceContext`. */
  traceParent: string;
  end(status: number): void;
}

/**
 * The host's side of telemetry. Without Application Insights: a fresh trace per request (or the caller's
 * trace), no recording. With it: a server span per request, made with the global OpenTelemetry API the
 * app's Application Insights set-up registers (the real host records requests with its own SDK).
 */
async function requestRecorder(): Promise<{
  start(name: string, url: URL, traceParent: string | undefined): RecordedRequest;
}> {
  if (!process.env.APPLICATIONINSIGHTS_CONNECTION_STRING) {
    return {
      start: (_name, _url, incoming) => {
        const trace = parseTraceParent(incoming)?.traceId ?? randomHex(16);
        return { traceParent: `00-${trace}-${randomHex(8)}-01`, end: () => {} };
      },
    };
  }
  const api = await import('@opentelemetry/api');
  return {
    start(name, url, incoming) {
      // Looked up per request: the app registers its providers asynchronously, and a tracer taken
      // earlier from this copy of the API would stay a no-op.
      const tracer = api.trace.getTracer('local-functions-host');
      const parent = incoming ? api.propagation.extract(api.ROOT_CONTEXT, { traceparent: incoming }) : api.ROOT_CONTEXT;
      const span = tracer.startSpan(
        name,
        {
          kind: api.SpanKind.SERVER,
          attributes: {
            'http.request.method': name.split(' ')[0] ?? 'GET',
            'url.full': `${url.origin}${url.pathname}`,
          },
        },
        parent,
      );
      // A span made before the app registered its providers records nothing: give the invocation a trace anyway.
      const spanContext = span.spanContext();
      const ids = api.isSpanContextValid(spanContext) ? spanContext : { traceId: randomHex(16), spanId: randomHex(8) };
      return {
        traceParent: `00-${ids.traceId}-${ids.spanId}-01`,
        end(status) {
          span.setAttribute('http.response.status_code', status);
          if (status >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
          span.end();
        },
      };
    },
  };
}

/** The last `Host` header seen and its origin: a client sends the same one on every request of a connection. */
let lastHost: { host: string; origin: string } | undefined;

/** `http://<host>` for a `Host` header that is a host (and port), else undefined. */
function requestOrigin(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return 'http://127.0.0.1';
  if (lastHost?.host === host) return lastHost.origin;
  if (!/^[^\s/?#@\\]+$/.test(host)) return undefined;
  try {
    const origin = new URL(`http://${host}`).origin;
    lastHost = { host, origin };
    return origin;
  } catch {
    return undefined;
  }
}

/**
 * The body as it streams in, or undefined as soon as it grows past `maxBytes`: then the request is paused, not
 * read further (nor destroyed, so that the 413 can still be written on its socket).
 */
function readRequestBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.pause();
        cleanup();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onClose = () => {
      if (req.complete) return;
      cleanup();
      reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    };
    const cleanup = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    };
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/** 413 with `Connection: close`, then the connection closes: the rest of the body is never read. */
function refuseTooLarge(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  req.pause();
  res.shouldKeepAlive = false;
  res.writeHead(413, { connection: 'close', 'content-length': '0' });
  res.end(() => socket?.destroy());
}

/** The caller disconnected (the body or the answer was cut off): a fact to note, not a bug. */
function clientGone(req: IncomingMessage, res: ServerResponse, error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return (
    req.destroyed ||
    res.destroyed ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    (error instanceof Error && error.message === 'aborted')
  );
}

export async function startHost(options: HostOptions): Promise<RunningHost> {
  const app = await loadApp(options.appDir);
  const maxRequestBytes = options.maxRequestBytes ?? HOST_MAX_REQUEST_BYTES;
  // Loaded only now, after the stub is in place, and from the same module cache the app uses.
  const azf = (await import('@azure/functions')).default;
  const prefix = `/${(options.routePrefix ?? 'api').replace(/^\/|\/$/g, '')}`;
  const log = options.log ?? defaultLog;
  const requests = await requestRecorder();
  for (const { name, reason } of app.refused) log('error', name, `not started: ${reason}`);
  // A schedule that does not resolve disables that function only, as indexing errors do in the Functions host.
  const schedules = new Map<string, Schedule>();
  for (const timer of app.timers) {
    try {
      schedules.set(timer.name, timerSchedule(timer));
    } catch (error) {
      log('error', timer.name, (error as Error).message);
    }
  }
  const lastRun = new Map<string, Date>();
  const pending = new Map<string, NodeJS.Timeout>();
  let closed = false;

  async function runTimer(name: string, scheduledFor?: Date): Promise<void> {
    const scheduled = scheduledFor !== undefined;
    const scheduledAt = scheduledFor ?? new Date();
    const timer = app.timers.find((t) => t.name === name);
    const schedule = schedules.get(name);
    if (!timer || !schedule) throw new Error(`No timer function named "${name}".`);
    const next = schedule.next(scheduledAt);
    const info: Timer = {
      isPastDue: false,
      schedule: { adjustForDST: false },
      scheduleStatus: {
        last: (lastRun.get(name) ?? new Date(0)).toISOString(),
        next: next?.toISOString() ?? '',
        lastUpdated: new Date().toISOString(),
      },
    };
    lastRun.set(name, scheduledAt);
    const context = new azf.InvocationContext({
      functionName: name,
      invocationId: randomUUID(),
      logHandler: (level, ...args) => log(level, name, args.map(String).join(' ')),
      traceContext: {
        traceParent: `00-${randomHex(16)}-${randomHex(8)}-01`,
        attributes: {},
      },
    });
    const reason = scheduled
      ? `Timer fired at ${scheduledAt.toISOString()}`
      : 'This function was programmatically called';
    log('information', name, `Executing (Reason='${reason}', Id=${context.invocationId})`);
    try {
      await timer.handler(info, context);
      log('information', name, `Executed (Succeeded, Id=${context.invocationId})`);
    } catch (error) {
      log('error', name, `handler threw: ${error instanceof Error ? (error.stack ?? error.name) : String(error)}`);
    }
  }

  /** Arms the next occurrence of `name`; unref'd, so a schedule never keeps the process alive. */
  function arm(name: string): void {
    const at = schedules.get(name)?.next(new Date());
    if (closed || !at) return;
    // setTimeout's limit is about 24.8 days: wake up earlier and re-arm when the occurrence is further.
    const delay = Math.min(at.getTime() - Date.now(), 2 ** 31 - 1);
    const handle = setTimeout(() => {
      if (Date.now() + 5 < at.getTime()) return arm(name);
      void runTimer(name, at).finally(() => arm(name));
    }, delay);
    handle.unref();
    pending.set(name, handle);
  }
  for (const name of schedules.keys()) arm(name);
  // host.json `extensions.queues` (and the local host's LOCAL_HOST_QUEUE_* settings) is read only when there is a
  // queue function to apply it to; the queues are polled once the server listens, so a host that fails to start
  // leaves nothing polling.
  const queuesOptions =
    app.queues.length > 0
      ? { ...readQueuesOptions(options.appDir), ...localHostQueueSettings(process.env), ...options.queues }
      : defaultQueuesOptions();

  const routes = app.functions.map((fn) => ({ fn, segments: compileRoute(fn.route) }));

  async function handle(req: IncomingMessage, res: ServerResponse, origin: string): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const method = (req.method ?? 'GET').toUpperCase();
    const adminRun = /^\/admin\/functions\/([^/]+)$/i.exec(url.pathname);
    if (adminRun && method === 'POST') {
      if (!authorized('admin', req, url, options.masterKey)) {
        res.writeHead(401).end();
        return;
      }
      const name = safeDecode(adminRun[1] as string);
      if (name === undefined || !schedules.has(name)) {
        res.writeHead(404).end();
        return;
      }
      req.resume();
      res.writeHead(202).end();
      void runTimer(name);
      return;
    }
    if (url.pathname.toLowerCase() === '/admin/functions' && method === 'GET') {
      if (!authorized('admin', req, url, options.masterKey)) {
        res.writeHead(401).end();
        return;
      }
      const list = app.functions.map(({ name, methods, authLevel, route }) => ({
        name,
        methods,
        authLevel,
        route,
        invokeUrl: `${origin}${prefix}/${route}`,
      }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list));
      return;
    }
    // The Functions host matches routes, its prefix included, without regard to case.
    const path = url.pathname.toLowerCase().startsWith(`${prefix.toLowerCase()}/`)
      ? url.pathname.slice(prefix.length)
      : undefined;
    const segments = path?.split('/').filter(Boolean);
    const matches =
      segments === undefined
        ? []
        : routes.flatMap(({ fn, segments: want }) => {
            const params = matchRoute(want, segments);
            return params ? [{ fn, params }] : [];
          });
    const match = matches.find(({ fn }) => fn.methods.includes(method));
    if (!match) {
      const status = matches.length > 0 ? 405 : 404;
      const allow = matches.length > 0 ? { allow: matches.flatMap(({ fn }) => fn.methods).join(', ') } : {};
      res.writeHead(status, allow).end();
      return;
    }
    if (!authorized(match.fn.authLevel, req, url, options.masterKey)) {
      res.writeHead(401).end();
      return;
    }
    const body = await readRequestBody(req, maxRequestBytes);
    if (body === undefined) {
      // Past the host's limit: answer and close the connection, reading no further (as the platform does).
      log('warning', match.fn.name, `request body larger than ${maxRequestBytes} bytes: 413, connection closed`);
      refuseTooLarge(req, res);
      return;
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const functionName = match.fn.name;
    const invocation = requests.start(`${method} /api/${match.fn.route}`, url, headers.traceparent);
    const request = new azf.HttpRequest({
      method,
      url: url.href,
      headers,
      params: match.params,
      // The bytes as read (HttpRequest copies them into its own body).
      ...(body.length > 0 ? { body: { bytes: body } } : {}),
    });
    const context = new azf.InvocationContext({
      functionName,
      invocationId: randomUUID(),
      logHandler: (level, ...args) => log(level, functionName, args.map(String).join(' ')),
      traceContext: { traceParent: invocation.traceParent, attributes: {} },
    });
    let result: unknown;
    try {
      result = await match.fn.handler(request, context);
    } catch (error) {
      log(
        'error',
        functionName,
        `handler threw: ${error instanceof Error ? (error.stack ?? error.name) : String(error)}`,
      );
      invocation.end(500);
      res.writeHead(500).end();
      return;
    }
    const answer = await wireAnswer(result, azf.HttpResponse);
    invocation.end(answer.status);
    res.writeHead(answer.status, answer.headers).end(answer.body);
  }

  const server: Server = createServer((req, res) => {
    const origin = requestOrigin(req.headers.host);
    if (origin === undefined) {
      // Not a host (`a b`, `[`, `%zz`): the request is malformed, as Kestrel answers it.
      req.resume();
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('Bad Request: invalid Host header\n');
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxRequestBytes) {
      log('warning', 'host', `Content-Length ${declared} is above the host's ${maxRequestBytes} bytes: 413`);
      refuseTooLarge(req, res);
      return;
    }
    handle(req, res, origin).catch((error: unknown) => {
      if (clientGone(req, res, error)) {
        // The caller hung up: nothing to answer, and nothing wrong with the app.
        log('warning', 'host', `${req.method} ${req.url}: the client disconnected before the answer`);
        return;
      }
      log('error', 'host', error instanceof Error ? (error.stack ?? error.name) : String(error));
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 7071, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const queueListeners = await startQueueListeners(app.queues, queuesOptions, azf.InvocationContext, log);
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    queues: queueListeners.queues,
    runTimer: (name) => runTimer(name),
    async close() {
      closed = true;
      for (const handle of pending.values()) clearTimeout(handle);
      await queueListeners.stop();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
