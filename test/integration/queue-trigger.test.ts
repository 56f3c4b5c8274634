/**
 * The local host runs storage queue triggers the way the Functions host does, on the run's Azurite (Queue
 * service): a tiny app of its own (written to dist/, like registration.test.ts does) registers a queue function
 * through `app.storageQueue` and shows what its handler saw on `GET /api/seen`. See docs/azure-functions.md#storage-queue-triggers.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostProcess, isolatedEnv, REPO_ROOT, startHostProcess, startProcess } from '../support/stack.js';

const APP_DIR = join(REPO_ROOT, 'dist', `queue-trigger-app-${process.pid}`);
const MAX_DEQUEUE_COUNT = 3;

interface Seen {
  message: unknown;
  metadata: Record<string, unknown>;
  trigger: string;
  pid: number;
}

const service = () => QueueServiceClient.fromConnectionString(String(process.env.AzureWebJobsStorage));
const base64 = (text: string) => Buffer.from(text).toString('base64');

async function newQueue(): Promise<QueueClient> {
  const queue = service().getQueueClient(`q-${randomUUID().replaceAll('-', '').slice(0, 24)}`);
  await queue.create();
  return queue;
}

/** Polls `probe` until it returns a value (not undefined); fails with `what` if that never happens. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 20_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function seen(host: HostProcess): Promise<Seen[]> {
  return (await fetch(`${host.hostUrl}/api/seen`)).json() as Promise<Seen[]>;
}

/** The messages in a queue, visible or not. */
async function messageCount(queue: QueueClient): Promise<number> {
  return (await queue.getProperties()).approximateMessagesCount ?? 0;
}

beforeAll(() => {
  mkdirSync(APP_DIR, { recursive: true });
  writeFileSync(join(APP_DIR, 'package.json'), JSON.stringify({ type: 'module', main: 'f.js' }));
  writeFileSync(
    join(APP_DIR, 'host.json'),
    JSON.stringify({
      version: '2.0',
      extensions: { queues: { maxPollingInterval: '00:00:00.200', maxDequeueCount: MAX_DEQUEUE_COUNT } },
    }),
  );
  writeFileSync(
    join(APP_DIR, 'f.js'),
    `import { app } from '@azure/functions';
     const seen = [];
     app.storageQueue('work', {
       queueName: '%WORK_QUEUE%',
       connection: 'AzureWebJobsStorage',
       handler: async (message, context) => {
         seen.push({ message, metadata: context.triggerMetadata, trigger: context.options.trigger.type, pid: process.pid });
         if (message && typeof message === 'object' && message.fail) throw new Error('planned failure');
       },
     });
     app.storageQueue('unresolved', { queueName: '%NO_SUCH_SETTING%', connection: '', handler: async () => {} });
     app.http('seen', { methods: ['GET'], authLevel: 'anonymous', route: 'seen', handler: async () => ({ jsonBody: seen }) });`,
  );
});

afterAll(() => {
  rmSync(APP_DIR, { recursive: true, force: true });
});

describe('one host on a queue named by %WORK_QUEUE%', () => {
  let host: HostProcess;
  let queue: QueueClient;
  let poison: QueueClient;
  /** A message received maxDequeueCount times already, as if by hosts that died during its invocation. */
  let exhausted: { id: string; text: string };
  beforeAll(async () => {
    queue = await newQueue();
    poison = service().getQueueClient(`${queue.name}-poison`);
    const text = base64(JSON.stringify({ exhausted: true }));
    const sent = await queue.sendMessage(text);
    for (let i = 0; i < MAX_DEQUEUE_COUNT; i++) {
      const [received] = (await queue.receiveMessages({ visibilityTimeout: 60 })).receivedMessageItems;
      if (!received) throw new Error('the message to exhaust was not received');
      await queue.updateMessage(received.messageId, received.popReceipt, undefined, 0);
    }
    exhausted = { id: sent.messageId, text };
    // In capitals: the host lowercases the resolved name, as the Functions host does.
    host = await startHostProcess({ WORK_QUEUE: queue.name.toUpperCase() }, { appDir: APP_DIR });
  });

  /** The poison queue's messages, once it has some. */
  const poisoned = () =>
    until('a message is in the poison queue', async () => {
      const items = (await poison.exists())
        ? (await poison.peekMessages({ numberOfMessages: 32 })).peekedMessageItems
        : [];
      return items.length > 0 ? items : undefined;
    });

  it('resolves %WORK_QUEUE% from the settings and says which queue it polls; an unset setting stops that function only', () => {
    const output = host.host.output();
    expect(output).toContain(`work: queue "${queue.name}" (%WORK_QUEUE%), connection AzureWebJobsStorage\n`);
    expect(output).toContain(
      `unresolved error: not started: The function "unresolved": '%NO_SUCH_SETTING%' does not resolve to a value`,
    );
    expect(output).toContain(
      'unresolved: queue "%NO_SUCH_SETTING%", connection AzureWebJobsStorage (not started, see above)',
    );
  });

  it('a message already dequeued maxDequeueCount times (its hosts died during the invocation) goes to poison uninvoked', async () => {
    const [moved, ...others] = await poisoned();
    expect(others).toEqual([]);
    expect(moved?.messageText).toBe(exhausted.text);
    expect((await seen(host)).filter((s) => s.metadata.id === exhausted.id)).toEqual([]);
    await until('it is gone from the queue', async () => ((await messageCount(queue)) === 0 ? true : undefined));
    await poison.clearMessages();
  });
  afterAll(async () => {
    await host?.host.stop();
  });

  it('a base64 JSON message reaches the handler parsed, with the trigger metadata, and is deleted', async () => {
    const sent = await queue.sendMessage(base64(JSON.stringify({ referralId: 'r-1', status: 'Active' })));
    const entry = await until('the handler sees the message', async () =>
      (await seen(host)).find((s) => s.metadata.id === sent.messageId),
    );
    expect(entry.message).toEqual({ referralId: 'r-1', status: 'Active' });
    expect(entry.trigger).toBe('queueTrigger');
    expect(entry.metadata).toMatchObject({
      id: sent.messageId,
      dequeueCount: 1,
      queueTrigger: JSON.stringify({ referralId: 'r-1', status: 'Active' }),
      insertionTime: sent.insertedOn.toISOString(),
      expirationTime: sent.expiresOn.toISOString(),
    });
    expect(typeof entry.metadata.popReceipt).toBe('string');
    expect(Date.parse(String(entry.metadata.nextVisibleTime))).toBeGreaterThan(
      Date.parse(String(entry.metadata.insertionTime)),
    );
    await until('the message is deleted', async () => ((await messageCount(queue)) === 0 ? true : undefined));
    expect(host.host.output()).toContain(
      `work information: Executing (Reason='New queue message detected on '${queue.name}'.'`,
    );
  });

  it('a message that is not JSON reaches the handler as its text', async () => {
    const sent = await queue.sendMessage(base64('plain text, {not json'));
    const entry = await until('the handler sees the message', async () =>
      (await seen(host)).find((s) => s.metadata.id === sent.messageId),
    );
    expect(entry.message).toBe('plain text, {not json');
  });

  it('a handler that throws sees the message again with dequeueCount 2, 3; after maxDequeueCount it is in <queue>-poison and gone from the queue', async () => {
    const text = base64(JSON.stringify({ fail: true }));
    const sent = await queue.sendMessage(text);
    const [moved] = await poisoned();
    expect(moved?.messageText).toBe(text);
    const tries = (await seen(host))
      .filter((s) => s.metadata.id === sent.messageId)
      .map((s) => s.metadata.dequeueCount);
    expect(tries).toEqual([1, 2, 3].slice(0, MAX_DEQUEUE_COUNT));
    expect(await messageCount(queue)).toBe(0);
    expect(await messageCount(poison)).toBe(1);
    await poison.clearMessages();
  });

  it('a message that is not base64 goes to the poison queue without an invocation', async () => {
    const sent = await queue.sendMessage('not base64!');
    const [moved] = await poisoned();
    expect(moved?.messageText).toBe('not base64!');
    expect((await seen(host)).filter((s) => s.metadata.id === sent.messageId)).toEqual([]);
    expect(await messageCount(queue)).toBe(0);
  });
});

it('two host processes on one queue process 50 messages exactly once in total', async () => {
  const queue = await newQueue();
  const hosts = await Promise.all([
    startHostProcess({ WORK_QUEUE: queue.name }, { appDir: APP_DIR }),
    startHostProcess({ WORK_QUEUE: queue.name }, { appDir: APP_DIR }),
  ]);
  try {
    await Promise.all(Array.from({ length: 50 }, (_, n) => queue.sendMessage(base64(JSON.stringify({ n })))));
    await until(
      'every message is handled and deleted',
      async () => {
        const total = (await Promise.all(hosts.map(seen))).flat().length;
        return total >= 50 && (await messageCount(queue)) === 0 ? true : undefined;
      },
      25_000,
    );
    const all = (await Promise.all(hosts.map(seen))).flat();
    expect(all).toHaveLength(50);
    expect(all.map((s) => (s.message as { n: number }).n).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 50 }, (_, n) => n),
    );
    expect(new Set(all.map((s) => s.metadata.id)).size).toBe(50);
    expect(all.every((s) => s.metadata.dequeueCount === 1)).toBe(true);
  } finally {
    await Promise.all(hosts.map((h) => h.host.stop()));
  }
});

it('closing the host stops polling: nothing keeps the process alive, and a message sent afterwards is never received', async () => {
  const queue = await newQueue();
  const script = `
    const { startHost } = await import('./dist/dev/host/host.js');
    const host = await startHost({ appDir: ${JSON.stringify(APP_DIR)}, port: 0,
      log: (level, name, message) => console.log(name + ' ' + level + ': ' + message) });
    console.log('started');
    process.once('SIGUSR2', async () => { await host.close(); console.log('closed'); });`;
  const child = startProcess(
    ['--input-type=module', '-e', script],
    isolatedEnv({ WORK_QUEUE: queue.name, AzureWebJobsStorage: String(process.env.AzureWebJobsStorage) }),
  );
  try {
    await child.waitFor(/started/);
    await queue.sendMessage(base64('before close'));
    await child.waitFor(/work information: Executed \(Succeeded/);
    child.child.kill('SIGUSR2');
    await child.waitFor(/closed/);
    await queue.sendMessage(base64('after close'));
    // The process ends by itself: no poll, timer or connection is left. (A host still polling would take the
    // message sent after close, a second invocation, and fail here at once.)
    const received = child
      .waitFor(/(Executing \(Reason[^\n]*\n[\s\S]*){2}/)
      .then(() => 'a message was received after close')
      .catch(() => new Promise<never>(() => {}));
    expect(await Promise.race([child.exited.then((code) => `exited with ${code}`), received])).toBe('exited with 0');
    const left = (await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems;
    expect(left.map((m) => [Buffer.from(m.messageText, 'base64').toString(), m.dequeueCount])).toEqual([
      ['after close', 0],
    ]);
  } finally {
    await child.stop();
  }
});
