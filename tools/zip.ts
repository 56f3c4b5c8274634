/**
 * A small ZIP writer and reader on node:zlib, so packaging needs no `zip` binary and no dependency.
 *
 * - `writeZip`: deflate (or store, when deflate does not help), CRC-32 from `zlib.crc32`, directory
 *   entries for every parent folder, sorted entries and a fixed timestamp, so the same files always give
 *   the same bytes. Unix permissions are recorded (0644 files, 0755 folders) for Linux extractors.
 * - `readZip`: the central directory, each local header, inflate, CRC check. Enough to prove an archive
 *   written here (or by another tool, without ZIP64 or encryption) is valid.
 * No ZIP64: every size and offset must stay below 4 GiB, which a function app package does by far.
 */
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  /** Forward slashes, relative, no leading `/`; a trailing `/` makes a folder. */
  name: string;
  data: Uint8Array;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const UTF8_NAMES = 1 << 11;
const STORE = 0;
const DEFLATE = 8;
/** 1980-01-01 00:00:00, the first instant a ZIP (MS-DOS) timestamp can hold. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const DOS_TIME = 0;
const VERSION_NEEDED = 20;
/** "Made by" Unix (3), spec 2.0, so extractors honour the mode bits in the external attributes. */
const VERSION_MADE_BY = (3 << 8) | 20;
const FILE_ATTRIBUTES = (0o100644 << 16) >>> 0;
const FOLDER_ATTRIBUTES = ((0o40755 << 16) | 0x10) >>> 0;
const MAX_32 = 0xffffffff;

function checkName(name: string): void {
  if (!name || name.startsWith('/') || name.includes('\\') || name.split('/').some((part) => part === '..')) {
    throw new Error(`zip: bad entry name "${name}"`);
  }
}

/** The archive's bytes: the entries plus one folder entry for each parent folder, sorted by name. */
export function writeZip(entries: readonly ZipEntry[]): Buffer {
  const byName = new Map<string, Uint8Array>();
  for (const entry of entries) {
    checkName(entry.name);
    if (byName.has(entry.name)) throw new Error(`zip: duplicate entry "${entry.name}"`);
    byName.set(entry.name, entry.data);
    const parts = entry.name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const folder = `${parts.slice(0, i).join('/')}/`;
      if (folder !== entry.name && !byName.has(folder)) byName.set(folder, new Uint8Array(0));
    }
  }
  const names = [...byName.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const name of names) {
    const data = byName.get(name) as Uint8Array;
    const folder = name.endsWith('/');
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const deflated = folder || data.length === 0 ? undefined : deflateRawSync(data, { level: 9 });
    const method = deflated && deflated.length < data.length ? DEFLATE : STORE;
    const stored = method === DEFLATE ? (deflated as Buffer) : Buffer.from(data);
    if (stored.length >= MAX_32 || data.length >= MAX_32 || offset >= MAX_32) {
      throw new Error(`zip: "${name}" needs ZIP64, which this writer does not support`);
    }

    const local = Buffer.alloc(30);
    local.writeUInt32LE(LOCAL_HEADER, 0);
    local.writeUInt16LE(VERSION_NEEDED, 4);
    local.writeUInt16LE(UTF8_NAMES, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(0, 28);
    chunks.push(local, nameBytes, stored);

    const header = Buffer.alloc(46);
    header.writeUInt32LE(CENTRAL_HEADER, 0);
    header.writeUInt16LE(VERSION_MADE_BY, 4);
    header.writeUInt16LE(VERSION_NEEDED, 6);
    header.writeUInt16LE(UTF8_NAMES, 8);
    header.writeUInt16LE(method, 10);
    header.writeUInt16LE(DOS_TIME, 12);
    header.writeUInt16LE(DOS_DATE, 14);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(stored.length, 20);
    header.writeUInt32LE(data.length, 24);
    header.writeUInt16LE(nameBytes.length, 28);
    header.writeUInt16LE(0, 30); // extra field length
    header.writeUInt16LE(0, 32); // comment length
    header.writeUInt16LE(0, 34); // disk number
    header.writeUInt16LE(0, 36); // internal attributes
    header.writeUInt32LE(folder ? FOLDER_ATTRIBUTES : FILE_ATTRIBUTES, 38);
    header.writeUInt32LE(offset, 42);
    central.push(header, nameBytes);

    offset += local.length + nameBytes.length + stored.length;
  }
  const centralSize = central.reduce((sum, chunk) => sum + chunk.length, 0);
  if (names.length > 0xffff || offset + centralSize >= MAX_32) throw new Error('zip: archive needs ZIP64');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
  end.writeUInt16LE(0, 4);
  end.writeUInt16LE(0, 6);
  end.writeUInt16LE(names.length, 8);
  end.writeUInt16LE(names.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(0, 20);
  return Buffer.concat([...chunks, ...central, end]);
}

export interface ReadEntry {
  name: string;
  /** Empty for folders. */
  data: Buffer;
  folder: boolean;
  method: number;
  compressedSize: number;
  /** Unix mode bits, when the archive was made on Unix. */
  mode: number | undefined;
}

/** Every entry of the archive, in central directory order; throws on anything malformed or a CRC mismatch. */
export function readZip(zip: Buffer): ReadEntry[] {
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error('zip: no end of central directory record (not a ZIP file?)');
  const count = zip.readUInt16LE(end + 10);
  const centralSize = zip.readUInt32LE(end + 12);
  let position = zip.readUInt32LE(end + 16);
  if (position + centralSize > end) throw new Error('zip: central directory out of bounds');

  const entries: ReadEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(position) !== CENTRAL_HEADER) throw new Error(`zip: bad central header at ${position}`);
    const madeBy = zip.readUInt16LE(position + 4);
    const flags = zip.readUInt16LE(position + 8);
    const method = zip.readUInt16LE(position + 10);
    const crc = zip.readUInt32LE(position + 16);
    const compressedSize = zip.readUInt32LE(position + 20);
    const size = zip.readUInt32LE(position + 24);
    const nameLength = zip.readUInt16LE(position + 28);
    const extraLength = zip.readUInt16LE(position + 30);
    const commentLength = zip.readUInt16LE(position + 32);
    const attributes = zip.readUInt32LE(position + 38);
    const localOffset = zip.readUInt32LE(position + 42);
    const name = zip.toString(flags & UTF8_NAMES ? 'utf8' : 'latin1', position + 46, position + 46 + nameLength);
    position += 46 + nameLength + extraLength + commentLength;

    if (flags & 1) throw new Error(`zip: "${name}" is encrypted`);
    if (zip.readUInt32LE(localOffset) !== LOCAL_HEADER) throw new Error(`zip: bad local header for "${name}"`);
    const dataStart = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const raw = zip.subarray(dataStart, dataStart + compressedSize);
    if (raw.length !== compressedSize) throw new Error(`zip: "${name}" is truncated`);
    let data: Buffer;
    if (method === STORE) data = Buffer.from(raw);
    else if (method === DEFLATE) data = inflateRawSync(raw);
    else throw new Error(`zip: "${name}" uses compression method ${method}`);
    if (data.length !== size) throw new Error(`zip: "${name}" has ${data.length} bytes, expected ${size}`);
    if (crc32(data) !== crc) throw new Error(`zip: CRC mismatch in "${name}"`);
    entries.push({
      name,
      data,
      folder: name.endsWith('/'),
      method,
      compressedSize,
      mode: madeBy >> 8 === 3 ? attributes >>> 16 : undefined,
    });
  }
  return entries;
}
