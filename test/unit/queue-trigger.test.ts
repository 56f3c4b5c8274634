/**
 * The local host's queue trigger rules that need no queue: host.json `extensions.queues` and its defaults,
 * TimeSpans, strict base64, the payload handed to the handler, `%SETTING%` queue names.
 * The polling itself runs on Azurite in test/integration/queue-trigger.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeBase64,
  localHostQueueSettings,
  parseTimeSpan,
  type QueueFunction,
  queuePayload,
  RECEIVE_VISIBILITY_SECONDS,
  readQueuesOptions,
  resolveQueueName,
} from '../../dev/host/queue-trigger.js';

const dirs: string[] = [];
function appWithHostJson(hostJson: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'queue-options-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'host.json'), JSON.stringify(hostJson));
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('host.json extensions.queues', () => {
  it("defaults to the Functions host's in local development: 2 s, visibility 0, batches of 16, threshold N*16/2, 5 dequeues, base64", () => {
    expect(readQueuesOptions(appWithHostJson({ version: '2.0' }))).toEqual({
      maxPollingIntervalMs: 2_000,
      visibilityTimeoutMs: 0,
      batchSize: 16,
      newBatchThreshold: availableParallelism() * 8,
      maxDequeueCount: 5,
      messageEncoding: 'base64',
    });
  });

  it('reads every setting; batchSize moves the default threshold with it', () => {
    const app = appWithHostJson({
      version: '2.0',
      extensions: {
        queues: {
          maxPollingInterval: '00:00:02',
          visibilityTimeout: '00:00:30',
          batchSize: 4,
          maxDequeueCount: 2,
          messageEncoding: 'none',
        },
      },
    });
    expect(readQueuesOptions(app)).toEqual({
      maxPollingIntervalMs: 2_000,
      visibilityTimeoutMs: 30_000,
      batchSize: 4,
      newBatchThreshold: availableParallelism() * 2,
      maxDequeueCount: 2,
      messageEncoding: 'none',
    });
    const threshold = appWithHostJson({ extensions: { queues: { batchSize: 4, newBatchThreshold: 1 } } });
    expect(readQueuesOptions(threshold).newBatchThreshold).toBe(1);
  });

  it('refuses what the host refuses: a batch above 32, a polling interval under 100 ms, an unknown encoding', () => {
    expect(() => readQueuesOptions(appWithHostJson({ extensions: { queues: { batchSize: 33 } } }))).toThrow(
      /batchSize/,
    );
    expect(() =>
      readQueuesOptions(appWithHostJson({ extensions: { queues: { maxPollingInterval: '00:00:00.050' } } })),
    ).toThrow(/maxPollingInterval/);
    expect(() => readQueuesOptions(appWithHostJson({ extensions: { queues: { messageEncoding: 'utf8' } } }))).toThrow(
      /messageEncoding/,
    );
  });

  it('reads TimeSpans with days and fractions', () => {
    expect(parseTimeSpan('00:00:00.1')).toBe(100);
    expect(parseTimeSpan('00:01:00')).toBe(60_000);
    expect(parseTimeSpan('1.02:03:04.5')).toBe(((26 * 60 + 3) * 60 + 4) * 1000 + 500);
    expect(() => parseTimeSpan('2000')).toThrow(/TimeSpan/);
  });
});

describe('messages', () => {
  it('decodes strict base64 only, as .NET does', () => {
    expect(decodeBase64(Buffer.from('héllo').toString('base64'))?.toString()).toBe('héllo');
    expect(decodeBase64('aGk=\n')?.toString()).toBe('hi');
    expect(decodeBase64('')?.toString()).toBe('');
    for (const bad of ['not base64!', 'aGk', 'aG=k', 'aGk==='] as const) expect(decodeBase64(bad)).toBeUndefined();
  });

  it('hands a JSON object or array to the handler parsed, anything else as text', () => {
    expect(queuePayload('{"a":1}')).toEqual({ a: 1 });
    expect(queuePayload(' [1,2] ')).toEqual([1, 2]);
    expect(queuePayload('{not json}')).toBe('{not json}');
    expect(queuePayload('42')).toBe('42');
    expect(queuePayload('"quoted"')).toBe('"quoted"');
  });
});

describe('queue names', () => {
  const fn = (queueName: string): QueueFunction => ({
    name: 'work',
    queueName,
    connection: '',
    binding: { name: 'queueTrigger', type: 'queueTrigger' },
    handler: async () => undefined,
  });
  it('resolves %SETTING% parts from the app settings and lowercases the name', () => {
    expect(resolveQueueName(fn('%ENV%-Work'), { ENV: 'Dev' })).toBe('dev-work');
    expect(resolveQueueName(fn('updates'), {})).toBe('updates');
  });
  it('refuses an unset setting and a name that is not a queue name, naming the function', () => {
    expect(() => resolveQueueName(fn('%MISSING%'), {})).toThrow(/"work": '%MISSING%' does not resolve/);
    expect(() => resolveQueueName(fn('a--b'), {})).toThrow(/not a valid queue name/);
    expect(() => resolveQueueName(fn('ab'), {})).toThrow(/not a valid queue name/);
  });
});

describe("the local host's own settings (dev/test only)", () => {
  it("leases a received message for the Functions host's 10 minutes unless LOCAL_HOST_QUEUE_LEASE_SECONDS says otherwise", () => {
    expect(RECEIVE_VISIBILITY_SECONDS).toBe(600);
    expect(localHostQueueSettings({})).toEqual({ leaseSeconds: 600 });
    expect(localHostQueueSettings({ LOCAL_HOST_QUEUE_LEASE_SECONDS: '' })).toEqual({ leaseSeconds: 600 });
    expect(localHostQueueSettings({ LOCAL_HOST_QUEUE_LEASE_SECONDS: ' 3 ' })).toEqual({ leaseSeconds: 3 });
    expect(localHostQueueSettings({ LOCAL_HOST_QUEUE_LEASE_SECONDS: '604800' })).toEqual({ leaseSeconds: 604_800 });
  });

  it('overrides maxPollingInterval with LOCAL_HOST_QUEUE_MAX_POLLING_MS, 100 ms at least', () => {
    expect(localHostQueueSettings({ LOCAL_HOST_QUEUE_MAX_POLLING_MS: '250' })).toEqual({
      leaseSeconds: 600,
      maxPollingIntervalMs: 250,
    });
    expect(() => localHostQueueSettings({ LOCAL_HOST_QUEUE_MAX_POLLING_MS: '50' })).toThrow(
      /LOCAL_HOST_QUEUE_MAX_POLLING_MS must be an integer from 100/,
    );
  });

  it('refuses a lease that Queue Storage would refuse, or that is not a whole number of seconds, naming the setting', () => {
    for (const bad of ['0', '604801', '1.5', '-3', 'ten', '3s']) {
      expect(() => localHostQueueSettings({ LOCAL_HOST_QUEUE_LEASE_SECONDS: bad })).toThrow(
        /LOCAL_HOST_QUEUE_LEASE_SECONDS must be an integer from 1 to 604800/,
      );
    }
  });
});
