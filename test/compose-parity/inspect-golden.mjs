#!/usr/bin/env node
// Writes <case>/inspect-golden.json for the inspect goldens of packages/manager's
// inspect-golden.test.ts: what Docker's daemon printed (`service|secret|config inspect` and
// `network inspect`, raw, from record.sh's KEEP_RAW answers of Docker CLI 28) beside what the
// CLI sends the daemon for that case (Shoal's prepareStack: the parity test holds it equal to
// what Docker's CLI sent).
//
// usage: KEEP_RAW=/tmp/raw RAW_ONLY=1 test/compose-parity/record.sh CASE...   (root, ~15 s a case)
//        npm run build && node test/compose-parity/inspect-golden.mjs /tmp/raw CASE...
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const { prepareStack } = await import(new URL('../../packages/compose/dist/index.js', import.meta.url).href);

const [rawDir, ...cases] = process.argv.slice(2);
if (!rawDir || cases.length === 0) {
  console.error('usage: inspect-golden.mjs RAW_DIR CASE...');
  process.exit(2);
}

/** Bytes as base64, as on the wire's JSON. */
const plain = (v) =>
  JSON.parse(JSON.stringify(v, (_k, x) => (x && x.type === 'Buffer' ? Buffer.from(x.data).toString('base64') : x)));

for (const name of cases) {
  const dir = join(here, name);
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
  const raw = JSON.parse(readFileSync(join(rawDir, name, 'cli28.json'), 'utf8'));
  if (raw.exitCode !== 0) throw new Error(`${name}: Docker refused the case`);
  const prev = process.cwd();
  process.chdir(dir);
  const { specs } = prepareStack(c.stack, { files: c.files.map((f) => join(dir, f)), env: c.env ?? {} });
  process.chdir(prev);
  const golden = {
    description: `Docker 20.10.24 (CLI ${raw.cli}) inspect output for case ${name}, and the specs sent`,
    stack: c.stack,
    setup: c.setup ?? {},
    sent: plain({
      externalNetworks: specs.externalNetworks,
      externalSecrets: specs.externalSecrets,
      externalConfigs: specs.externalConfigs,
      networks: specs.networks,
      secrets: specs.secrets,
      configs: specs.configs,
      services: specs.services,
    }),
    docker: {
      networkNames: raw.networkNames,
      services: raw.services,
      networks: raw.networks,
      secrets: raw.secrets,
      configs: raw.configs,
    },
  };
  writeFileSync(join(dir, 'inspect-golden.json'), JSON.stringify(golden, null, 2) + '\n');
  console.log(`${name}: ${raw.services.length} services, ${raw.networks.length} networks`);
}
