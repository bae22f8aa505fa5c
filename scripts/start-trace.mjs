#!/usr/bin/env node
// Sums up the `task start trace` lines of shoald logs (kept by `npm run bench:stack -- --keep-logs
// DIR` or `npm run bench:services -- --keep-logs DIR`): per step, the median and max of the
// milliseconds since the task was created (managers) or taken by its node (workers), and the
// worker's sandbox builds. Usage: node scripts/start-trace.mjs DIR [--json]
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node scripts/start-trace.mjs DIR [--json]\n');
  process.exit(2);
}
const managers = new Map(); // task -> {at, steps}
const workers = new Map(); // task -> {at, steps, host}
const sandboxes = [];
for (const f of readdirSync(dir).filter((n) => n.endsWith('.log'))) {
  for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
    if (!line.includes('task start trace') && !line.includes('task network sandbox made')) continue;
    let o;
    try {
      o = JSON.parse(line);
    } catch (err) {
      if (err instanceof SyntaxError) continue; // a line cut by the copy
      throw err;
    }
    if (o.msg === 'task network sandbox made') sandboxes.push({ host: f, ms: o.ms, steps: o.steps });
    else if (o.msg === 'task start trace' && o.steps?.new !== undefined) managers.set(o.task, o);
    else if (o.msg === 'task start trace') workers.set(o.task, { ...o, host: f });
  }
}
const stat = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (s.length === 0) return { n: 0 };
  return { n: s.length, p50: s[Math.floor((s.length - 1) / 2)], max: s[s.length - 1] };
};
const out = { manager: {}, worker: {}, combined: {}, sandbox: {} };
for (const k of ['pending', 'assigned', 'running'])
  out.manager[k] = stat([...managers.values()].map((m) => m.steps[k]));
for (const k of ['pulled', 'options', 'bundle', 'sandbox', 'runtime', 'running'])
  out.worker[k] = stat([...workers.values()].map((w) => w.steps?.[k]));
// one timeline per task: created (0) -> node took it -> node reported running -> running committed
const rows = [];
for (const [task, m] of managers) {
  const w = workers.get(task);
  if (!w) continue;
  rows.push({
    taken: w.at - m.at,
    reported: w.at + (w.steps.running ?? NaN) - m.at,
    committed: m.steps.running,
  });
}
for (const k of ['taken', 'reported', 'committed']) out.combined[k] = stat(rows.map((r) => r[k]));
out.sandbox.total = stat(sandboxes.map((s) => s.ms));
for (const k of ['netns', 'links', 'inside']) out.sandbox[k] = stat(sandboxes.map((s) => s.steps?.[k]));
if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(out) + '\n');
else {
  const fmt = (o) =>
    Object.entries(o).map(([k, v]) => `  ${k.padEnd(10)} n=${v.n} p50=${v.p50 ?? '-'} max=${v.max ?? '-'}`);
  process.stdout.write(
    [
      'managers (ms since the task was created):',
      ...fmt(out.manager),
      'workers (ms since the node took the task):',
      ...fmt(out.worker),
      'per task (ms since created: node took it, node reported running, running committed):',
      ...fmt(out.combined),
      'sandbox builds (ms):',
      ...fmt(out.sandbox),
    ].join('\n') + '\n',
  );
}
