/**
 * Storage queue triggers for the local host, run the way the Functions host runs them
 * (https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger), on a real
 * queue service (Azurite locally), so that a queue function is exercised through its registration:
 *
 * - Polling: a batch of up to `batchSize` messages per receive; a new batch only once the messages in flight are
 *   down to `newBatchThreshold` (#concurrency). After a message, the next poll in 100 ms; when the queue is empty,
 *   about 200 ms, then a randomised exponential back-off up to `maxPollingInterval`, which defaults to 2 seconds
 *   "during local development" as under `func start` (1 minute in Azure) (#polling-algorithm).
 * - A received message is invisible for 10 minutes (the visibility the Functions host leaves on a message when it
 *   crashes, #peek-lock), renewed at half of that while its invocation runs: several hosts polling one queue get
 *   distinct messages through Queue Storage's own visibility. One received more often than `maxDequeueCount` (a host
 *   died during its invocation) goes to the poison queue uninvoked. Dev/test only: `LOCAL_HOST_QUEUE_LEASE_SECONDS`
 *   shortens those 10 minutes (so a test can kill a host and see its messages come back in seconds), and
 *   `LOCAL_HOST_QUEUE_MAX_POLLING_MS` overrides `maxPollingInterval` (docs/local-development.md#queue-triggers);
 *   the Functions host has neither.
 * - `messageEncoding` `base64` (the default) decodes each message; one that is not valid base64 goes to the
 *   poison queue uninvoked. The payload is the message's text, JSON-parsed when it is a JSON object or array
 *   (#usage), and `InvocationContext.triggerMetadata` holds `id`, `dequeueCount`, `expirationTime`,
 *   `insertionTime`, `nextVisibleTime`, `popReceipt` and `queueTrigger` (#message-metadata).
 * - Success deletes the message. A throw leaves it, visible again after `visibilityTimeout` (default 0), and the
 *   attempt that reaches `maxDequeueCount` (default 5, the first try included) moves it to `<queue>-poison`,
 *   created on demand (#poison-messages).
 * - `%SETTING%` in the queue name is read from the environment (app settings), and the name is lowercased.
 *
 * The connection is the app setting the binding's `connection` names (`AzureWebJobsStorage` when empty; a name
 * without its `AzureWebJobs` prefix also finds it, #connections), a connection string. Identity-based connections
 * (`<connection>__queueServiceUri`) are not run here: the emulators cannot check Entra tokens, so such a function
 * is not started (docs/local-development.md#queue-triggers).
 * host.json `extensions.queues` sets the options
 * (https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json).
 * The #anchors above are sections of the queue trigger page.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { InvocationContext, InvocationContextInit } from '@azure/functions';
import type { DequeuedMessageItem, QueueClient, QueueServiceClient } from '@azure/storage-queue';

export interface QueueFunction {
  name: string;
  /** As registered: a queue name, possibly with `%SETTING%` parts. */
  queueName: string;
  /** As registered: the name of the connection's app setting; empty means `AzureWebJobsStorage`. */
  connection: string;
  /** The trigger binding as registered, for `InvocationContext.options.trigger`. */
  binding: Record<string, unknown> & { name: string; type: string };
  handler: (message: unknown, context: InvocationContext) => Promise<unknown>;
}

/** host.json `extensions.queues`, with the Functions host's defaults. */
export interface QueuesOptions {
  maxPollingIntervalMs: number;
  visibilityTimeoutMs: number;
  batchSize: number;
  newBatchThreshold: number;
  maxDequeueCount: number;
  messageEncoding: 'base64' | 'none';
}

/** The shortest wait between polls (#polling-algorithm), also the smallest `maxPollingInterval` allowed. */
const MIN_POLLING_INTERVAL_MS = 100;
/** How long a received message stays invisible while its invocation runs (#peek-lock); renewed at half of it. */
export const RECEIVE_VISIBILITY_SECONDS = 600;
/** The longest visibility timeout Queue Storage accepts: 7 days. */
const MAX_VISIBILITY_SECONDS = 604_800;

/** The local host's own queue settings (dev/test only, not the Functions host's): see {@link localHostQueueSettings}. */
export interface LocalQueueSettings {
  /** How long a received message stays invisible while its invocation runs, renewed at half of it (default 600). */
  leaseSeconds: number;
  /** Overrides host.json `maxPollingInterval` when set. */
  maxPollingIntervalMs?: number;
}

/**
 * `LOCAL_HOST_QUEUE_LEASE_SECONDS` (1 to 604800, default 600: the Functions host's 10 minutes) and
 * `LOCAL_HOST_QUEUE_MAX_POLLING_MS` (100 or more, over host.json `maxPollingInterval`), for tests that kill a host
 * and wait for its messages to come back, or want a short polling back-off. Throws naming the setting.
 */
export function localHostQueueSettings(env: NodeJS.ProcessEnv = process.env): LocalQueueSettings {
  const integer = (name: string, min: number, max: number): number | undefined => {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max)
      throw new Error(`${name} must be an integer from ${min} to ${max} (got "${env[name]}")`);
    return value;
  };
  const leaseSeconds =
    integer('LOCAL_HOST_QUEUE_LEASE_SECONDS', 1, MAX_VISIBILITY_SECONDS) ?? RECEIVE_VISIBILITY_SECONDS;
  const maxPollingIntervalMs = integer('LOCAL_HOST_QUEUE_MAX_POLLING_MS', MIN_POLLING_INTERVAL_MS, 2 ** 31 - 1);
  return maxPollingIntervalMs === undefined ? { leaseSeconds } : { leaseSeconds, maxPollingIntervalMs };
}

/** `maxPollingInterval` "during local development" (#polling-algorithm); Azure's default is 1 minute. */
export const LOCAL_MAX_POLLING_INTERVAL_MS = 2_000;

/** host.json `extensions.queues` defaults (functions-bindings-storage-queue#host-json), as `func start` applies them. */
export function defaultQueuesOptions(): QueuesOptions {
  const batchSize = 16;
  return {
    maxPollingIntervalMs: LOCAL_MAX_POLLING_INTERVAL_MS,
    visibilityTimeoutMs: 0,
    batchSize,
    // N * batchSize / 2, N being the number of vCPUs (#host-json).
    newBatchThreshold: Math.floor((availableParallelism() * batchSize) / 2),
    maxDequeueCount: 5,
    messageEncoding: 'base64',
  };
}

/** A host.json TimeSpan (`[d.]hh:mm:ss[.fffffff]`) in milliseconds. */
export function parseTimeSpan(value: string): number {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(value.trim());
  if (!match) throw new Error(`"${value}" is not a TimeSpan (hh:mm:ss[.fff])`);
  const [, days, hours, minutes, seconds, fraction] = match;
  const ms =
    (((Number(days ?? 0) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000 +
    Math.round(Number(`0.${fraction ?? '0'}`) * 1000);
  return ms;
}

/** The queue options of `<appDir>/host.json` (`extensions.queues`) over the defaults; throws on a bad value. */
export function readQueuesOptions(appDir: string): QueuesOptions {
  const options = defaultQueuesOptions();
  const path = join(appDir, 'host.json');
  if (!existsSync(path)) return options;
  const hostJson = JSON.parse(readFileSync(path, 'utf8')) as { extensions?: { queues?: Record<string, unknown> } };
  const queues = hostJson.extensions?.queues ?? {};
  const bad = (key: string, rule: string) => new Error(`host.json extensions.queues.${key}: ${rule}`);
  const integer = (key: string, min: number, max: number): number | undefined => {
    const value = queues[key];
    if (value === undefined) return undefined;
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
      throw bad(key, `an integer from ${min} to ${max}`);
    return value as number;
  };
  const timeSpan = (key: string): number | undefined => {
    const value = queues[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw bad(key, 'a TimeSpan string, hh:mm:ss[.fff]');
    return parseTimeSpan(value);
  };
  const batchSize = integer('batchSize', 1, 32);
  if (batchSize !== undefined) {
    options.batchSize = batchSize;
    options.newBatchThreshold = Math.floor((availableParallelism() * batchSize) / 2);
  }
  options.newBatchThreshold = integer('newBatchThreshold', 0, 2 ** 31 - 1) ?? options.newBatchThreshold;
  options.maxDequeueCount = integer('maxDequeueCount', 1, 2 ** 31 - 1) ?? options.maxDequeueCount;
  const maxPolling = timeSpan('maxPollingInterval');
  if (maxPolling !== undefined) {
    if (maxPolling < MIN_POLLING_INTERVAL_MS) throw bad('maxPollingInterval', 'at least 00:00:00.100');
    options.maxPollingIntervalMs = maxPolling;
  }
  options.visibilityTimeoutMs = timeSpan('visibilityTimeout') ?? options.visibilityTimeoutMs;
  const encoding = queues.messageEncoding;
  if (encoding !== undefined) {
    if (encoding !== 'base64' && encoding !== 'none') throw bad('messageEncoding', '"base64" or "none"');
    options.messageEncoding = encoding;
  }
  return options;
}

/** The queue name with every `%SETTING%` read from `env`, lowercased; throws as the host's indexing would. */
export function resolveQueueName(fn: QueueFunction, env: NodeJS.ProcessEnv = process.env): string {
  const name = fn.queueName.replace(/%([^%]+)%/g, (_all, setting: string) => {
    const value = env[setting];
    if (value === undefined || value === '')
      throw new Error(
        `The function "${fn.name}": '%${setting}%' does not resolve to a value (app setting ${setting}).`,
      );
    return value;
  });
  const lower = name.toLowerCase();
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(lower))
    throw new Error(
      `The function "${fn.name}": "${name}" is not a valid queue name (3 to 63 letters, digits and single hyphens).`,
    );
  return lower;
}

/** Strict base64, as .NET's `Convert.FromBase64String` reads it (white space ignored). */
export function decodeBase64(text: string): Buffer | undefined {
  const compact = text.replace(/[\t\n\r ]/g, '');
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

/** The handler's argument: a JSON object or array parsed, anything else the string itself. */
export function queuePayload(text: string): unknown {
  const trimmed = text.trim();
  const json = (trimmed.startsWith('{') && trimmed.endsWith('}')) || (trimmed.startsWith('[') && trimmed.endsWith(']'));
  if (!json) return text;
  try {
    return JSON.parse(trimmed);
  } catch {
    return text;
  }
}

type Log = (level: string, functionName: string, message: string) => void;
type ContextClass = new (init: InvocationContextInit) => InvocationContext;

export interface QueueListeners {
  /** The functions polling, with their resolved queue names. */
  queues: Array<{ name: string; queue: string }>;
  /** Stops polling and waits for the invocations in flight to end. */
  stop(): Promise<void>;
}

function connectionClient(
  sdk: typeof import('@azure/storage-queue'),
  fn: QueueFunction,
  env: NodeJS.ProcessEnv,
): QueueServiceClient {
  const setting = fn.connection || 'AzureWebJobsStorage';
  const value = env[setting] || env[`AzureWebJobs${setting}`];
  if (value) return sdk.QueueServiceClient.fromConnectionString(value);
  const identityBased = env[`${setting}__queueServiceUri`] ?? env[`${setting}__serviceUri`];
  throw new Error(
    identityBased
      ? `The function "${fn.name}": ${setting}__queueServiceUri is an identity-based connection, which the local host does not run; set ${setting} to a connection string (Azurite's when unset, docs/local-development.md).`
      : `The function "${fn.name}": the connection's app setting ${setting} is not set.`,
  );
}

const explain = (error: unknown) => (error instanceof Error ? (error.stack ?? error.message) : String(error));

/** Starts one listener per queue function; a function whose queue or connection does not resolve is logged and skipped. */
export async function startQueueListeners(
  functions: QueueFunction[],
  options: QueuesOptions & { leaseSeconds?: number },
  InvocationContextClass: ContextClass,
  log: Log,
  env: NodeJS.ProcessEnv = process.env,
): Promise<QueueListeners> {
  if (functions.length === 0) return { queues: [], stop: async () => {} };
  const sdk = await import('@azure/storage-queue');
  const abort = new AbortController();
  const loops: Promise<void>[] = [];
  const queues: QueueListeners['queues'] = [];
  for (const fn of functions) {
    let queue: QueueClient;
    let service: QueueServiceClient;
    try {
      const queueName = resolveQueueName(fn, env);
      service = connectionClient(sdk, fn, env);
      queue = service.getQueueClient(queueName);
    } catch (error) {
      log('error', fn.name, `not started: ${(error as Error).message}`);
      continue;
    }
    loops.push(listen(fn, queue, service, options, InvocationContextClass, log, abort.signal));
    queues.push({ name: fn.name, queue: queue.name });
  }
  return {
    queues,
    async stop() {
      abort.abort();
      await Promise.all(loops);
    },
  };
}

async function listen(
  fn: QueueFunction,
  queue: QueueClient,
  service: QueueServiceClient,
  options: QueuesOptions & { leaseSeconds?: number },
  InvocationContextClass: ContextClass,
  log: Log,
  signal: AbortSignal,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let delay = MIN_POLLING_INTERVAL_MS;
  let lastError = '';
  const poison = service.getQueueClient(`${queue.name}-poison`);
  const dispatch = (message: DequeuedMessageItem) =>
    invoke(fn, queue, poison, message, options, InvocationContextClass, log);

  while (!signal.aborted) {
    if (inFlight.size > options.newBatchThreshold) {
      await Promise.race(inFlight);
      continue;
    }
    let messages: DequeuedMessageItem[] = [];
    try {
      const response = await queue.receiveMessages({
        numberOfMessages: options.batchSize,
        visibilityTimeout: options.leaseSeconds ?? RECEIVE_VISIBILITY_SECONDS,
        abortSignal: signal,
      });
      messages = response.receivedMessageItems;
      lastError = '';
    } catch (error) {
      if (signal.aborted) break;
      // A queue that does not exist yet is an empty one; anything else is said once, then polled on a back-off.
      const status = (error as { statusCode?: number }).statusCode;
      const text = `polling queue "${queue.name}" failed: ${(error as Error).message}`;
      if (status !== 404 && text !== lastError) log('warning', fn.name, text);
      if (status !== 404) lastError = text;
    }
    for (const message of messages) {
      const run = dispatch(message).finally(() => inFlight.delete(run));
      inFlight.add(run);
    }
    // A message found: poll again after 100 ms. None: about twice the last wait (randomised), up to
    // maxPollingInterval.
    const jitter = 0.8 + Math.random() * 0.4;
    delay =
      messages.length > 0
        ? MIN_POLLING_INTERVAL_MS
        : Math.min(options.maxPollingIntervalMs, Math.max(MIN_POLLING_INTERVAL_MS, delay * 2 * jitter));
    try {
      await sleep(delay, undefined, { signal });
    } catch {
      break;
    }
  }
  await Promise.allSettled(inFlight);
}

async function invoke(
  fn: QueueFunction,
  queue: QueueClient,
  poison: QueueClient,
  message: DequeuedMessageItem,
  options: QueuesOptions & { leaseSeconds?: number },
  InvocationContextClass: ContextClass,
  log: Log,
): Promise<void> {
  let popReceipt = message.popReceipt;
  const leaseSeconds = options.leaseSeconds ?? RECEIVE_VISIBILITY_SECONDS;
  const toPoison = async (why: string) => {
    log('warning', fn.name, `message ${message.messageId} ${why}: moved to queue "${poison.name}"`);
    await poison.createIfNotExists();
    await poison.sendMessage(message.messageText);
    await queue.deleteMessage(message.messageId, popReceipt);
  };
  try {
    // Received more often than allowed (an invocation that never ended, e.g. a host that stopped): no more tries.
    if (message.dequeueCount > options.maxDequeueCount) {
      await toPoison(`was dequeued ${message.dequeueCount} times (maxDequeueCount ${options.maxDequeueCount})`);
      return;
    }
    const bytes =
      options.messageEncoding === 'base64' ? decodeBase64(message.messageText) : Buffer.from(message.messageText);
    if (bytes === undefined) {
      await toPoison('is not valid base64 (host.json extensions.queues.messageEncoding is base64)');
      return;
    }
    const text = bytes.toString('utf8');
    const context = new InvocationContextClass({
      functionName: fn.name,
      invocationId: randomUUID(),
      logHandler: (level, ...args) => log(level, fn.name, args.map(String).join(' ')),
      traceContext: {
        traceParent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
        attributes: {},
      },
      triggerMetadata: {
        queueTrigger: text,
        id: message.messageId,
        dequeueCount: message.dequeueCount,
        expirationTime: message.expiresOn.toISOString(),
        insertionTime: message.insertedOn.toISOString(),
        nextVisibleTime: message.nextVisibleOn.toISOString(),
        popReceipt: message.popReceipt,
      },
      options: { trigger: fn.binding, extraInputs: [], extraOutputs: [] },
    });
    log(
      'information',
      fn.name,
      `Executing (Reason='New queue message detected on '${queue.name}'.', Id=${context.invocationId})`,
    );
    // Keep the message invisible while the invocation runs, however long. Each renewal gives a new pop receipt,
    // so the delete or release below waits for the last one.
    let renewing = Promise.resolve();
    const renewal = setInterval(
      () => {
        renewing = renewing
          .then(() => queue.updateMessage(message.messageId, popReceipt, undefined, leaseSeconds))
          .then((updated) => {
            if (updated.popReceipt) popReceipt = updated.popReceipt;
          })
          .catch((error: unknown) => log('warning', fn.name, `could not renew message ${message.messageId}: ${error}`));
      },
      (leaseSeconds * 1000) / 2,
    );
    let failure: unknown;
    try {
      await fn.handler(queuePayload(text), context);
    } catch (error) {
      failure = error ?? new Error('the handler threw');
    } finally {
      clearInterval(renewal);
      await renewing;
    }
    if (failure === undefined) {
      log('information', fn.name, `Executed (Succeeded, Id=${context.invocationId})`);
      await queue.deleteMessage(message.messageId, popReceipt);
      return;
    }
    log('error', fn.name, `Executed (Failed, Id=${context.invocationId}): ${explain(failure)}`);
    if (message.dequeueCount >= options.maxDequeueCount) {
      await toPoison(`failed on attempt ${message.dequeueCount} of ${options.maxDequeueCount}`);
      return;
    }
    // Visible again after visibilityTimeout, for the next try (the queue counts the dequeues).
    await queue.updateMessage(message.messageId, popReceipt, undefined, Math.round(options.visibilityTimeoutMs / 1000));
  } catch (error) {
    // The queue itself failed (delete, update, poison): the message reappears when its visibility lapses.
    log('error', fn.name, `message ${message.messageId}: ${explain(error)}`);
  }
}
