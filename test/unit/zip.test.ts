/**
 * tools/zip.ts (fflate): fflate's reader and, when installed, Info-ZIP's `unzip` read back exactly what
 * it writes; the same files give the same bytes, in any order and any time zone.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type UnzipFileInfo, unzipSync } from 'fflate';
import { afterEach, describe, expect, it } from 'vitest';
import { writeZip, type ZipEntry } from '../../tools/zip.js';

const text = (value: string) => new TextEncoder().encode(value);
const ENTRIES: ZipEntry[] = [
  { name: 'package.json', data: text('{"type":"module"}\n') },
  { name: 'host.json', data: text(JSON.stringify({ version: '2.0' }).repeat(50)) },
  { name: 'dist/functions/health.js', data: text('export const x = 1;\n'.repeat(200)) },
  { name: 'dist/chunks/random.bin', data: randomBytes(4096) },
  { name: 'dist/chunks/empty.js', data: new Uint8Array(0) },
];
const hasUnzip = spawnSync('unzip', ['-v'], { stdio: 'ignore' }).status === 0;

/** Every entry as fflate reads it, in central directory order. */
function read(zip: Uint8Array): { info: UnzipFileInfo[]; files: Record<string, Uint8Array> } {
  const info: UnzipFileInfo[] = [];
  const files = unzipSync(zip, {
    filter: (file) => {
      info.push(file);
      return true;
    },
  });
  return { info, files };
}

describe('zip', () => {
  const tz = process.env.TZ;
  afterEach(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  it('reads back every file, sorted by name', () => {
    const { info, files } = read(writeZip(ENTRIES));
    expect(info.map((e) => e.name)).toEqual([
      'dist/chunks/empty.js',
      'dist/chunks/random.bin',
      'dist/functions/health.js',
      'host.json',
      'package.json',
    ]);
    for (const original of ENTRIES) {
      expect(Buffer.from(files[original.name] ?? []).equals(Buffer.from(original.data)), original.name).toBe(true);
    }
  });

  it('deflates the files', () => {
    const { info } = read(writeZip(ENTRIES));
    const health = info.find((e) => e.name === 'dist/functions/health.js');
    expect(health?.compression).toBe(8);
    expect(health?.originalSize).toBe(4000);
    expect(health?.size).toBeLessThan(200);
  });

  it('is deterministic: the same files in any order, in any time zone, give the same bytes', () => {
    process.env.TZ = 'America/Los_Angeles';
    const west = writeZip([...ENTRIES].reverse());
    process.env.TZ = 'Asia/Tokyo';
    const east = writeZip(ENTRIES);
    expect(Buffer.from(west).equals(Buffer.from(east))).toBe(true);
  });

  it('refuses duplicate names', () => {
    expect(() => writeZip([ENTRIES[0] as ZipEntry, ENTRIES[0] as ZipEntry])).toThrow(/duplicate/);
  });

  it('refuses names an extractor could write outside its folder', () => {
    const data = new Uint8Array(1);
    for (const name of ['', '/etc/passwd', '../up.js', 'a/../../b.js', 'a\\b.js', './a.js', 'a//b.js', 'dir/']) {
      expect(() => writeZip([{ name, data }]), name).toThrow(/unsafe/);
    }
  });

  it.skipIf(!hasUnzip)("passes Info-ZIP's integrity test (unzip -t) and records Unix modes and the 1980 date", () => {
    const dir = mkdtempSync(join(tmpdir(), 'zip-test-'));
    try {
      const file = join(dir, 'test.zip');
      writeFileSync(file, writeZip(ENTRIES));
      const result = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
      expect(result.status, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain('No errors detected');
      const listing = spawnSync('unzip', ['-Z', '-l', file], { encoding: 'utf8' });
      expect(listing.stdout).toMatch(/^-rw-r--r-- .* unx .* defN 80-Jan-01 00:00 host\.json$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
