// Build check: package.json "main" must match exactly one built file per function in functions/.
// The Functions worker only *warns* when the glob matches nothing (the app then starts with no
// functions), so a wrong glob has to fail the build instead (platform-notes §3).
import { globSync, readdirSync, readFileSync } from 'node:fs';

const { main } = JSON.parse(readFileSync('package.json', 'utf8'));
const matched = globSync(main).sort();
const expected = readdirSync('functions')
  .filter((file) => file.endsWith('.ts'))
  .map((file) => `dist/functions/${file.replace(/\.ts$/, '.js')}`)
  .sort();
if (JSON.stringify(matched) !== JSON.stringify(expected)) {
  console.error(`package.json main "${main}" matches [${matched.join(', ')}], expected [${expected.join(', ')}]`);
  process.exit(1);
}
console.log(`entry points OK: ${matched.length} files match "${main}"`);
