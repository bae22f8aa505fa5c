#!/usr/bin/env node
// The main demo (`npm run demo`): a cluster of 5 lab hosts, 3 managers and 2 workers. The lab
// `demo` with its registry and the offline test images pushed to it, every host pinging every
// other and pulling a manifest from the registry, then shoald on every host: `swarm init` on h1,
// h2 and h3 join as managers, h4 and h5 as workers, and `shoal node ls` run on h1.
// Then the stack examples/webapp-db/docker-stack.yml is deployed as `shop` (a web front end on
// port 8080 of every node that asks its database by name over an overlay, and a secret), and the
// demo waits until every task runs and the page answers on every node's address.
// Idempotent: run it again and it reuses the lab. The lab stays up unless --down is given.
// Usage: npm run demo -- [--name demo] [--hosts 5] [--managers 3] [--down]
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'demo' },
    hosts: { type: 'string', default: '5' },
    managers: { type: 'string', default: '3' },
    down: { type: 'boolean', default: false },
  },
});

if (process.getuid?.() !== 0) {
  console.error('demo: must run as root (the lab makes network namespaces, links and a bridge)');
  process.exit(1);
}
let kit;
try {
  kit = await import('@shoal/testkit');
} catch (err) {
  // only a missing build is expected here; anything else is a real failure of the testkit
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  console.error('demo: build first (./scripts/setup.sh or npm run build)');
  process.exit(1);
}
const { labUp, labStatus, labExec, labDown, labCluster, pushTestImages, TestImages, MANIFEST_ACCEPT } = kit;
const cli = join(root, 'packages/cli/dist/main.js');
const { formatLab } = await import(join(root, 'packages/cli/dist/commands/lab.js'));

const t0 = performance.now();
const step = (msg) => console.log(`\n== ${msg}`);
const ms = (a) => `${Math.round(performance.now() - a)} ms`;

try {
  step(`lab up --name ${values.name} --hosts ${values.hosts}`);
  if (!(Number(values.managers) >= 1 && Number(values.managers) <= Number(values.hosts)))
    throw new Error(`--managers ${values.managers}: must be from 1 to --hosts ${values.hosts}`);
  let t = performance.now();
  const lab = await labUp({ name: values.name, hosts: values.hosts });
  const upTook = ms(t);
  process.stdout.write(formatLab(await labStatus(lab.name)));

  step(`push the offline test images to ${lab.registry.url}`);
  t = performance.now();
  const pushed = await pushTestImages(lab.registry.url);
  for (const p of pushed)
    console.log(
      `  ${p.remoteRef.padEnd(54)} ${p.digest.slice(0, 19)}…  ${p.mediaType.replace('application/vnd.', '')}`,
    );
  const pushTook = ms(t);

  step('every host pings every other host over the underlay');
  let ok = 0;
  let total = 0;
  for (const from of lab.hosts) {
    const cells = [];
    for (const to of lab.hosts) {
      const r = await labExec(lab.name, from.name, ['ping', '-c', '1', '-W', '1', to.address]);
      const rtt = /time=([\d.]+) ms/.exec(r.stdout)?.[1];
      total++;
      if (r.code === 0) ok++;
      cells.push(`${to.name} ${r.code === 0 ? `${rtt} ms` : 'FAIL'}`);
    }
    console.log(`  ${from.name} (${from.address}) -> ${cells.join(', ')}`);
  }

  step(`each host fetches ${TestImages.busybox} from the registry and checks its digest`);
  const want = pushed.find((p) => p.ref === TestImages.busybox);
  let verified = 0;
  for (const h of lab.hosts) {
    const file = join(h.dataDir, 'demo-manifest.json');
    const url = `${lab.registry.url}/v2/${want.repository}/manifests/${want.tag}`;
    const r = await labExec(lab.name, h.name, ['curl', '-sf', '-o', file, '-H', `Accept: ${MANIFEST_ACCEPT}`, url]);
    const got =
      r.code === 0
        ? `sha256:${createHash('sha256')
            .update(await readFile(file))
            .digest('hex')}`
        : 'fetch failed';
    await rm(file, { force: true });
    if (got === want.digest) verified++;
    console.log(`  ${h.name}: ${got === want.digest ? 'ok' : 'MISMATCH'} ${got.slice(0, 19)}…`);
  }

  step(
    `shoald on every host; swarm init on h1, ${Number(values.managers) - 1} managers and ${lab.hosts.length - Number(values.managers)} workers join`,
  );
  t = performance.now();
  await labCluster({ name: lab.name, managers: Number(values.managers) });
  const clusterTook = ms(t);

  step(`shoal lab exec ${lab.name} h1 -- shoal node ls`);
  // Reachability settles within a heartbeat or two after the last join.
  let nodeLs;
  for (let i = 0; i < 40; i++) {
    nodeLs = await labExec(lab.name, 'h1', [process.execPath, cli, 'node', 'ls']);
    const rows = nodeLs.stdout.trim().split('\n').slice(1);
    const leaders = rows.filter((r) => /\sLeader\s/.test(r)).length;
    const reachable = rows.filter((r) => /\sReachable\s/.test(r)).length;
    if (rows.length === lab.hosts.length && leaders === 1 && reachable === Number(values.managers) - 1) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  process.stdout.write(nodeLs.stdout + nodeLs.stderr);
  const rows = nodeLs.stdout.trim().split('\n').slice(1);
  const ready = rows.filter((r) => /\sReady\s/.test(r)).length;
  const managersSeen = rows.filter((r) => /\s(Leader|Reachable|Unreachable)\s/.test(r)).length;

  const stackFile = join(root, 'examples/webapp-db/docker-stack.yml');
  step(`shoal stack deploy -c examples/webapp-db/docker-stack.yml shop   (REGISTRY=${lab.registry.addr})`);
  t = performance.now();
  const deploy = await labExec(lab.name, 'h1', [
    'env',
    `REGISTRY=${lab.registry.addr}`,
    `SHOAL_INSECURE_REGISTRIES=${lab.registry.addr}`,
    process.execPath,
    cli,
    'stack',
    'deploy',
    '-c',
    stackFile,
    'shop',
  ]);
  process.stdout.write(deploy.stdout + deploy.stderr);
  let services = '';
  let running = false;
  for (let i = 0; deploy.code === 0 && i < 240 && !running; i++) {
    const r = await labExec(lab.name, 'h1', [process.execPath, cli, 'stack', 'services', 'shop']);
    services = r.stdout;
    const replicas = [...services.matchAll(/\s(\d+)\/(\d+)\s/g)];
    running = replicas.length === 2 && replicas.every((m) => m[1] === m[2] && m[2] !== '0');
    if (!running) await new Promise((r) => setTimeout(r, 500));
  }
  process.stdout.write(services);
  const deployTook = ms(t);

  step('the web service on port 8080 of every node asks the database by name: curl http://<node>:8080/cgi-bin/db');
  let answered = 0;
  for (const h of lab.hosts) {
    let body = '';
    for (let i = 0; running && i < 20 && !/db ok/.test(body); i++) {
      const r = await labExec(lab.name, 'h1', ['curl', '-s', '-m', '3', `http://${h.address}:8080/cgi-bin/db`]);
      body = r.stdout.trim();
      if (!/db ok/.test(body)) await new Promise((r) => setTimeout(r, 500));
    }
    if (/db ok/.test(body)) answered++;
    console.log(`  ${h.name} (${h.address}:8080): ${body || 'no answer'}`);
  }

  step('summary');
  console.log(`  lab ${lab.name}: ${lab.hosts.length} hosts on ${lab.subnet}, registry ${lab.registry.addr}`);
  console.log(`  up ${upTook}, push of ${pushed.length} images ${pushTook}, whole demo ${ms(t0)}`);
  console.log(`  pings ${ok}/${total} ok, manifest digests verified on ${verified}/${lab.hosts.length} hosts`);
  console.log(
    `  cluster made in ${clusterTook}: ${ready}/${lab.hosts.length} nodes Ready, ${managersSeen}/${values.managers} managers`,
  );
  console.log(
    `  stack shop deployed in ${deployTook}: tasks ${running ? 'all running' : 'NOT all running'}; the page answered on ${answered}/${lab.hosts.length} nodes`,
  );
  const good =
    running &&
    answered === lab.hosts.length &&
    ok === total &&
    verified === lab.hosts.length &&
    ready === lab.hosts.length &&
    managersSeen === Number(values.managers);
  if (values.down) {
    step(`lab down ${lab.name}`);
    const r = await labDown(lab.name);
    console.log(
      `  removed ${r.namespaces.length} namespaces, ${r.links.length} links, ${r.processes.length} processes`,
    );
  } else {
    console.log(`\nThe lab stays up. Try:`);
    console.log(`  npx shoal lab ls ${lab.name}`);
    console.log(`  npx shoal lab exec ${lab.name} h1 -- npx shoal stack ps shop`);
    console.log(`  npx shoal lab exec ${lab.name} h1 -- npx shoal service inspect shop_web`);
    console.log(`  npx shoal lab exec ${lab.name} h1 -- curl -s http://${lab.hosts.at(-1).address}:8080/cgi-bin/db`);
    console.log(`  npx shoal lab exec ${lab.name} h2 -- npx shoal node ls`);
    console.log(`  npx shoal lab exec ${lab.name} h1 -- npx shoal node inspect --pretty h4`);
    console.log(`  npx shoal lab exec ${lab.name} h1 -- npx shoal swarm join-token worker`);
    console.log(`  npx shoal lab stop ${lab.name} h1 --signal KILL; npx shoal lab start ${lab.name} h1`);
    console.log(`  npx shoal lab exec ${lab.name} h1 -- ping -c1 ${lab.hosts.at(-1).address}`);
    console.log(`  npx shoal lab exec ${lab.name} h2 -- curl -s ${lab.registry.url}/v2/_catalog`);
    console.log(`  npx shoal lab cut ${lab.name} h2; npx shoal lab heal ${lab.name} h2`);
    console.log(`Take it down with: npx shoal lab down ${lab.name}   (or npm run demo -- --down)`);
  }
  process.exitCode = good ? 0 : 1;
} catch (err) {
  console.error(`demo: ${err?.message ?? err}${err?.code ? ` [${err.code}]` : ''}`);
  process.exitCode = 1;
}
