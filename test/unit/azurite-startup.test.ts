/**
 * How dev/emulators/azurite.ts waits for a service to say it listens (`awaitStarted`), on a stand-in process
 * whose output the test writes: each line is looked at once however the output is chunked (never the whole
 * output again per chunk), nothing listens to the output once the service started, and an error quotes only the
 * end of the output. Counts, not times.
 */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { awaitStarted, type StartingProcess } from '../../dev/emulators/azurite.js';

function standIn(): StartingProcess & { stdout: PassThrough; stderr: PassThrough } {
  return Object.assign(new EventEmitter(), { stdout: new PassThrough(), stderr: new PassThrough() });
}

/** Writes `text` in chunks of `size` characters, letting the reader run after each. */
async function writeChunked(stream: PassThrough, text: string, size: number): Promise<void> {
  for (let i = 0; i < text.length; i += size) {
    stream.write(text.slice(i, i + size));
    await tick();
  }
}

const STARTED = 'Azurite Table service is successfully listening at http://127.0.0.1:10002\n';
const noise = (lines: number) =>
  `${Array.from({ length: lines }, (_, i) => `line ${i}: ${'x'.repeat(60)}`).join('\n')}\n`;

describe("waiting for Azurite's start-up line", () => {
  it('looks at each line once, whatever the chunks, and stops reading once started', async () => {
    const child = standIn();
    const before = noise(2_000);
    const seen = { lines: 0, chars: 0 };
    const started = awaitStarted(child, 'stand-in', {
      isStarted: (line) => {
        seen.lines++;
        seen.chars += line.length + 1;
        return /successfully listening/.test(line);
      },
    });
    // Chunks that cut lines anywhere, the start-up line itself included.
    await writeChunked(child.stdout, before + STARTED, 37);
    await started;
    expect(seen.lines).toBe(2_001);
    expect(seen.chars).toBe(before.length + STARTED.length);

    // Started: no listener left on the output, which flows on unread.
    expect(child.stdout.listenerCount('data')).toBe(0);
    expect(child.stderr.listenerCount('data')).toBe(0);
    expect(child.listenerCount('exit')).toBe(0);
    expect(child.stdout.readableFlowing).toBe(true);
    expect(child.stderr.readableFlowing).toBe(true);
    await writeChunked(child.stdout, noise(1_000), 4_096);
    await writeChunked(child.stderr, noise(1_000), 4_096);
    expect(seen.lines).toBe(2_001);
    expect(child.stdout.readableLength).toBe(0);
    expect(child.stderr.readableLength).toBe(0);
  });

  it('reads stderr too', async () => {
    const child = standIn();
    const started = awaitStarted(child, 'stand-in');
    child.stderr.write(STARTED);
    await expect(started).resolves.toBeUndefined();
  });

  it('quotes only the last 4 KiB of a long output when the service exits before starting', async () => {
    const child = standIn();
    const started = awaitStarted(child, 'stand-in');
    const output = noise(20_000);
    await writeChunked(child.stdout, output, 65_536);
    child.emit('exit', 1);
    const error: Error = await started.then(
      () => new Error('started'),
      (e: Error) => e,
    );
    expect(error.message).toMatch(/^stand-in exited \(1\) before starting:\n/);
    expect(error.message.length).toBeLessThanOrEqual('stand-in exited (1) before starting:\n'.length + 4_096);
    expect(error.message.endsWith(output.slice(-1_000))).toBe(true);
    expect(child.stdout.listenerCount('data')).toBe(0);
  });

  it('gives up after its timeout, quoting the output', async () => {
    const child = standIn();
    const started = awaitStarted(child, 'stand-in', { timeoutMs: 20 });
    child.stdout.write('still booting\n');
    await expect(started).rejects.toThrow(/stand-in did not start within 0.02 s:\nstill booting/);
    expect(child.listenerCount('exit')).toBe(0);
  });
});
