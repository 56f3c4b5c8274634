/**
 * tools/zip.ts: what it writes, it (and, when installed, Info-ZIP's `unzip`) reads back exactly; the
 * same files give the same bytes; corruption and unsafe names are refused.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readZip, writeZip, type ZipEntry } from '../../tools/zip.js';

const text = (value: string) => new TextEncoder().encode(value);
const ENTRIES: ZipEntry[] = [
  { name: 'package.json', data: text('{"type":"module"}\n') },
  { name: 'host.json', data: text(JSON.stringify({ version: '2.0' }).repeat(50)) },
  { name: 'dist/functions/health.js', data: text('export const x = 1;\n'.repeat(200)) },
  { name: 'dist/chunks/random.bin', data: randomBytes(4096) },
  { name: 'dist/chunks/empty.js', data: new Uint8Array(0) },
];
const hasUnzip = spawnSync('unzip', ['-v'], { stdio: 'ignore' }).status === 0;

describe('zip', () => {
  it('reads back every file, adds each parent folder, and sorts the entries', () => {
    const entries = readZip(writeZip(ENTRIES));
    expect(entries.map((e) => e.name)).toEqual([
      'dist/',
      'dist/chunks/',
      'dist/chunks/empty.js',
      'dist/chunks/random.bin',
      'dist/functions/',
      'dist/functions/health.js',
      'host.json',
      'package.json',
    ]);
    for (const original of ENTRIES) {
      const read = entries.find((e) => e.name === original.name);
      expect(read?.data.equals(Buffer.from(original.data)), original.name).toBe(true);
    }
  });

  it('deflates what shrinks, stores what does not, and records Unix modes', () => {
    const entries = readZip(writeZip(ENTRIES));
    const byName = (name: string) => entries.find((e) => e.name === name);
    expect(byName('dist/functions/health.js')?.method).toBe(8);
    expect(byName('dist/functions/health.js')?.compressedSize).toBeLessThan(200);
    expect(byName('dist/chunks/random.bin')?.method).toBe(0);
    expect(byName('host.json')?.mode).toBe(0o100644);
    expect(byName('dist/')?.mode).toBe(0o40755);
  });

  it('is deterministic: the same files in any order give the same bytes', () => {
    expect(writeZip([...ENTRIES].reverse()).equals(writeZip(ENTRIES))).toBe(true);
  });

  it('refuses unsafe or duplicate names', () => {
    for (const name of ['../evil.js', '/etc/passwd', 'a\\b.js', 'a/../../b', '']) {
      expect(() => writeZip([{ name, data: new Uint8Array(1) }]), name).toThrow(/bad entry name/);
    }
    expect(() => writeZip([ENTRIES[0] as ZipEntry, ENTRIES[0] as ZipEntry])).toThrow(/duplicate/);
  });

  it('detects corruption (CRC) and truncation', () => {
    const zip = writeZip([{ name: 'a.txt', data: text('hello hello hello hello hello') }]);
    const corrupted = Buffer.from(zip);
    const at = 30 + 'a.txt'.length + 2; // inside the compressed data
    corrupted[at] = (corrupted[at] ?? 0) ^ 0xff;
    expect(() => readZip(corrupted)).toThrow();
    expect(() => readZip(zip.subarray(0, zip.length - 30))).toThrow(/end of central directory|out of bounds/);
  });

  it.skipIf(!hasUnzip)("passes Info-ZIP's integrity test (unzip -t)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'zip-test-'));
    try {
      const file = join(dir, 'test.zip');
      writeFileSync(file, writeZip(ENTRIES));
      const result = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
      expect(result.status, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain('No errors detected');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
