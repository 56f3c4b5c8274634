/**
 * The deploy zip, written by fflate: entries sorted by name, deflated at level 9, a fixed timestamp and
 * fixed Unix attributes (0644 files, "made by" Unix so Linux extractors honour them), so the same files
 * always give the same bytes. No folder entries: extractors create the parent folders.
 */
import { zipSync } from 'fflate';

export interface ZipEntry {
  /** Forward slashes, relative, no leading `/`. */
  name: string;
  data: Uint8Array;
}

const UNIX = 3;
const FILE_ATTRIBUTES = 0o100644 << 16;

/** A name an extractor could write outside its folder, or that is no file name at all. */
function isUnsafe(name: string): boolean {
  return (
    name === '' ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.split('/').some((part) => part === '..' || part === '.' || part === '')
  );
}

/** The archive's bytes: the entries sorted by name. Refuses duplicate and unsafe names. */
export function writeZip(entries: readonly ZipEntry[]): Uint8Array {
  const unsafe = entries.find((entry) => isUnsafe(entry.name));
  if (unsafe) throw new Error(`zip: unsafe entry name ${JSON.stringify(unsafe.name)}`);
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files = Object.fromEntries(sorted.map(({ name, data }) => [name, data]));
  if (Object.keys(files).length !== entries.length) throw new Error('zip: duplicate entry name');
  // 1980-01-01 00:00, the first instant a ZIP (MS-DOS) timestamp can hold. fflate writes it from the Date's
  // local-time fields, so the Date is built from local-time fields, in the current time zone: the same
  // bytes in every time zone.
  const mtime = new Date(1980, 0, 1);
  return zipSync(files, { level: 9, mtime, os: UNIX, attrs: FILE_ATTRIBUTES });
}
