#!/usr/bin/env node
// Benchmark dispatcher: `npm run bench -- NAME [args]` runs the benchmark NAME.
// Each benchmark prints progress and ends with one JSON line of named figures.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const benches = {
  raft: 'packages/raft/dist/bench/raft.js',
  engine: 'packages/engine/dist/bench/engine.js',
  image: 'packages/cli/dist/bench/image.js',
  ca: 'packages/ca/dist/bench/ca.js',
  compose: 'packages/compose/dist/bench/compose.js',
  // compose_load_ms alone (no side-by-side figures): cheap to re-measure
  'compose-load': 'packages/compose/dist/bench/compose.js --load-only',
  manager: 'packages/manager/dist/bench/manager.js',
  scheduler: 'packages/manager/dist/bench/scheduler.js',
  assignments: 'packages/manager/dist/bench/assignments.js',
  cluster: 'packages/testkit/dist/bench/cluster.js',
  network: 'packages/testkit/dist/bench/network-connect.js',
  'network-dataplane': 'packages/network/dist/bench/network.js',
  services: 'packages/testkit/dist/bench/services.js',
  stack: 'packages/testkit/dist/bench/stack.js',
};
const [name, ...rest] = process.argv.slice(2);
const [file, ...fixedArgs] = (name ? (benches[name] ?? '') : '').split(' ').filter((x) => x !== '');
if (!file) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [args]`);
  process.exit(2);
}
const root = new URL('..', import.meta.url).pathname;
if (!existsSync(root + file)) {
  console.error(`${file} not found: run \`npm run build\` first`);
  process.exit(1);
}
const r = spawnSync(process.execPath, [root + file, ...fixedArgs, ...rest], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
