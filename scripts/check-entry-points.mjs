// Build check: package.json "main" must match exactly one built file per function in functions/.
// The Functions worker only *warns* when the glob matches nothing (the app then starts with no
// functions), so a wrong glob has to fail the build instead (docs/azure-functions.md#entry-points-and-the-main-glob).
// `node scripts/check-entry-points.mjs [appDir]`: the same check on another app folder, such as the
// deploy package (out/package/app) or an extracted deploy zip; the expected list still comes from
// this repository's functions/.
import { globSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const appDir = process.argv[2] ?? repo;
const { main } = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8'));
const matched = globSync(main, { cwd: appDir }).sort();
const expected = readdirSync(join(repo, 'functions'))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => `dist/functions/${file.replace(/\.ts$/, '.js')}`)
  .sort();
if (JSON.stringify(matched) !== JSON.stringify(expected)) {
  console.error(`package.json main "${main}" matches [${matched.join(', ')}], expected [${expected.join(', ')}]`);
  process.exit(1);
}
console.log(`entry points OK: ${matched.length} files match "${main}"${process.argv[2] ? ` in ${appDir}` : ''}`);
