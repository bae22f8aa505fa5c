// node packages/compose/dist/test/parity-golden.js RAW_DIR CASE_DIR: turns what
// test/compose-parity/record.sh captured for one case (RAW_DIR/cli28.json, RAW_DIR/cli20.json)
// into CASE_DIR/golden.json (CLI 28) and CASE_DIR/golden-cli20.json (CLI 20.10).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenFromRaw, type RawAnswer } from './parity-normalise.js';

const [rawDir, caseDir] = process.argv.slice(2);
if (!rawDir || !caseDir) {
  process.stderr.write('usage: parity-golden.js RAW_DIR CASE_DIR\n');
  process.exit(2);
}
for (const [tag, out] of [
  ['cli28', 'golden.json'],
  ['cli20', 'golden-cli20.json'],
] as const) {
  const file = join(rawDir, `${tag}.json`);
  if (!existsSync(file)) continue;
  const golden = goldenFromRaw(JSON.parse(readFileSync(file, 'utf8')) as RawAnswer);
  writeFileSync(join(caseDir, out), `${JSON.stringify(golden, null, 2)}\n`);
}
