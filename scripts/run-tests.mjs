#!/usr/bin/env node
// Runs every compiled test file with node:test and the spec reporter (CI reads its summary).
// Usage: node scripts/run-tests.mjs [--only PATTERN] [extra node --test flags]
// Test files: packages/*/dist/**/*.test.js and test/dist/**/*.test.js.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
let only;
const extra = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only = new RegExp(args[++i]);
  else extra.push(args[i]);
}

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [];
for (const pkg of readdirSync(join(root, 'packages'))) walk(join(root, 'packages', pkg, 'dist'), files);
walk(join(root, 'test', 'dist'), files);
const selected = files.filter((f) => !only || only.test(f)).map((f) => f.slice(root.length));
if (selected.length === 0) {
  console.error('no test files found: run `npm run build` first');
  process.exit(1);
}
// Tests are written to run in parallel safely; the machine has few cores, most tests wait on I/O.
const concurrency = process.env.SHOAL_TEST_CONCURRENCY ?? String(Math.max(2, os.availableParallelism() * 2));
const r = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...extra, ...selected],
  { cwd: root, stdio: 'inherit', env: { SHOAL_LOG_LEVEL: 'warn', ...process.env } },
);
process.exit(r.status ?? 1);
