/**
 * `shoal network connect` / `disconnect` of a plain container, end to end on a lab of 2 (h1
 * manager with c1, h2 worker with the service) through the real `shoal` CLI and each host's real shoald, as
 * `docker run --network neta ...; docker network connect --alias cb netb c1; docker network
 * disconnect netb c1`:
 *
 * - refusals change nothing (c1's interfaces, netb's containers): an unknown network or
 *   container (not found), a network not attachable, a container not on an attachable overlay,
 *   a disconnect from a network c1 is not on, a second connect (Docker's `endpoint with name c1
 *   already exists in network netb`), a disconnect from c1's first network;
 * - connected, c1 has a second interface with an address of netb's subnet and that subnet's
 *   route (the default route stays on the gateway leg), `network inspect netb` and `container
 *   inspect c1` (NetworkSettings.Networks) list it, c1 reaches the service on netb by name
 *   (its VIP) and the service's task on h2 reaches c1 by its name and its alias;
 * - c3 (`--restart always`, on neta and connected to netb) stopped by the user gives its
 *   attachments back; shoald of h1 killed and started again starts it (Docker's daemon start) on
 *   both networks again, in order, reaching c2 (neta, on h2) and web (netb);
 * - shoald of h1 killed and started again takes the leg back: both networks listed, the address
 *   on its interface, the service's name still resolving in c1;
 * - c1 stopped gives both attachments back; `container start` attaches it again to neta, then
 *   netb (eth2, alias cb): `container inspect` lists both in that order, and on each network it
 *   resolves and reaches, and is resolved and reached (c2 on h2 over neta, web's task over netb);
 *   after a disconnect, a stop/start brings back neta alone;
 * - disconnected, the interface, address and route are gone, netb's names no longer resolve in
 *   c1 nor c1's in netb, netb lists no container; connected again and disconnected while netb
 *   is otherwise unused, `network rm netb` goes from refused (naming c1) to done at once;
 * - `container rm` gives the container's connected networks back with it (netc lists nothing at
 *   once, `network rm netc` succeeds);
 * - nothing of the cluster is left on any host.
 *
 * Images come from the lab's registry. Root only; the lab goes in `after`, also when a test fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { run, waitFor, type RunResult } from '@shoal/common';
import { pushTestImages, readLabState, TestImages } from '@shoal/testkit';
import { cliMain, labTestRig } from './lab-test-rig.js';

/** The namespace-name tags of the cluster's nodes (their namespaces are removed in `after` too). */
let tags: string[] = [];
const { labName, shoal } = await labTestRig({
  rootPrefix: 'shoal-connlab-',
  labPrefix: 'cl',
  cleanup: async () => {
    for (const n of existsSync('/run/netns') ? readdirSync('/run/netns') : [])
      if (tags.some((tag) => n.includes(`-${tag}-`))) await run('ip', ['netns', 'del', n], { check: false });
  },
});
const HOSTS = ['h1', 'h2'];
/** c1's node: the manager, where `network inspect` lists it (only the local node's, as Docker's). */
const C = 'h1';
/** The web service's node. */
const W = 'h2';

function onHost(host: string, args: string[]): Promise<RunResult> {
  return shoal(['lab', 'exec', labName, host, '--', process.execPath, cliMain, ...args]);
}

let lastOutput = '';
async function ok(host: string, args: string[]): Promise<string> {
  const r = await onHost(host, args);
  lastOutput = `${args.join(' ')} -> ${r.stdout}${r.stderr}`;
  assert.equal(r.code, 0, `${host}: ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  try {
    return await waitFor(fn, { timeoutMs, intervalMs: 500 });
  } catch (err) {
    throw new Error(`${what}: ${String(err)}; last seen: ${lastOutput}`, { cause: err });
  }
}

async function inContainer(host: string, name: string, cmd: string[]): Promise<string> {
  const r = await onHost(host, ['container', 'exec', name, ...cmd]);
  lastOutput = `${host} ${name}: ${cmd.join(' ')} -> ${r.stdout}${r.stderr}`;
  return r.stdout;
}

/** The body of an HTTP GET to `target`:80 from inside a container (busybox nc, name or address). */
async function get(host: string, name: string, target: string): Promise<string> {
  const out = await inContainer(host, name, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${target} 80`]);
  return out.trim().split('\n').at(-1)?.trim() ?? '';
}

async function lookup(host: string, name: string, target: string): Promise<string[]> {
  const out = await inContainer(host, name, ['nslookup', target]);
  const answers = out
    .split(/Name:\s/)
    .slice(1)
    .join('\n');
  return [...answers.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1] ?? '').sort();
}

/** A container's full ID (`network inspect` lists containers by it, as Docker's). */
async function idOf(host: string, name: string): Promise<string> {
  const id = (await ok(host, ['container', 'inspect', '--format', '{{.Id}}', name])).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  return id;
}

type Containers = Record<string, { Name: string; EndpointID: string; IPv4Address: string }> | null;

async function inspectNet(name: string): Promise<{ IPAM: { Config: { Subnet: string }[] }; Containers: Containers }> {
  const out = await ok('h1', ['network', 'inspect', name]);
  return (
    (JSON.parse(out) as { IPAM: { Config: { Subnet: string }[] }; Containers: Containers }[])[0] ?? {
      IPAM: { Config: [] },
      Containers: null,
    }
  );
}

/** c1's swarm networks as `container inspect` shows them: name → address. */
async function c1Networks(): Promise<Record<string, string>> {
  const out = await ok(C, ['container', 'inspect', '--format', '{{json .NetworkSettings.Networks}}', 'c1']);
  const nets = JSON.parse(out) as Record<string, { IPAddress: string; IPPrefixLen: number }>;
  return Object.fromEntries(Object.entries(nets).map(([k, v]) => [k, `${v.IPAddress}/${v.IPPrefixLen}`]));
}

function inSubnet(addr: string, subnet: string): boolean {
  const [net, len] = subnet.split('/');
  const n = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const mask = 2 ** 32 - 2 ** (32 - Number(len));
  return (n(addr) & mask) >>> 0 === (n(net ?? '') & mask) >>> 0;
}

function tagOf(nodeId: string): string {
  return nodeId
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 10);
}

const esc = (s: string): string => s.replace(/\./g, '\\.');

test(
  'network connect / disconnect: a second network in the container, reach and be reached, refusals, release',
  { timeout: 1_500_000 },
  async () => {
    const up = await shoal(['lab', 'up', '--name', labName, '--hosts', '2', '--managers', '1']);
    assert.equal(up.code, 0, up.stderr);
    const state = await readLabState(labName);
    assert.ok(state?.registry, 'the lab has a registry');
    const image = (await pushTestImages(state.registry.url, { only: [TestImages.busybox] }))[0]?.remoteRef ?? '';
    assert.match(image, /busybox/);
    tags = (await ok('h1', ['node', 'ls', '--format', '{{.ID}}']))
      .split('\n')
      .filter((l) => l !== '')
      .map(tagOf);
    assert.equal(tags.length, 2);
    const insecure = ['--insecure-registry', new URL(state.registry.url).host];
    try {
      await ok('h1', ['network', 'create', '-d', 'overlay', '--attachable', 'neta']);
      await ok('h1', ['network', 'create', '-d', 'overlay', '--attachable', 'netb']);
      await ok('h1', ['network', 'create', '-d', 'overlay', 'netp']);
      const netbSubnet = (await inspectNet('netb')).IPAM.Config[0]?.Subnet ?? '';
      const httpd = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'];
      await ok('h1', [
        'service',
        'create',
        '-d',
        '--name',
        'web',
        '--network',
        'netb',
        '--constraint',
        `node.hostname==${W}`,
        image,
        ...httpd,
      ]);
      const serve = ['sh', '-c', 'mkdir -p /www && echo c1-body > /www/index.html && exec httpd -f -p 80 -h /www'];
      await ok(C, ['container', 'run', ...insecure, '-d', '--name', 'c1', '--network', 'neta', image, ...serve]);
      await ok(C, ['container', 'run', ...insecure, '-d', '--name', 'c0', image, 'sleep', '3600']);
      // c2: another container on neta, on the other host
      const serve2 = ['sh', '-c', 'mkdir -p /www && echo c2-body > /www/index.html && exec httpd -f -p 80 -h /www'];
      await ok(W, ['container', 'run', ...insecure, '-d', '--name', 'c2', '--network', 'neta', image, ...serve2]);
      const c2a = (await inContainer(W, 'c2', ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).match(
        /inet (\d+\.\d+\.\d+\.\d+)\//,
      )?.[1];
      assert.ok(c2a, "c2's neta address");
      const webTask = await until(`web running on ${W}`, async () => {
        const out = await ok('h1', [
          'service',
          'ps',
          '--no-trunc',
          '--filter',
          'desired-state=running',
          '--format',
          '{{.Node}} {{.CurrentState}} {{.Name}}.{{.ID}}',
          'web',
        ]);
        return out
          .split('\n')
          .find((x) => x.startsWith(`${W} Running `))
          ?.split(' ')
          .at(-1);
      });
      const vip =
        (
          JSON.parse(await ok('h1', ['service', 'inspect', '--format', '{{json .Endpoint.VirtualIPs}}', 'web'])) as {
            Addr: string;
          }[]
        )[0]?.Addr.split('/')[0] ?? '';
      const c1Addrs = async (): Promise<string> => inContainer(C, 'c1', ['ip', '-o', '-4', 'addr', 'show']);
      /** c1's addresses on its first network alone (new ones after each stop/start). */
      let before = await c1Addrs();
      assert.match(before, /eth0/);
      assert.deepEqual(Object.keys(await c1Networks()), ['neta']);

      // refusals: each exits non-zero with its message and changes nothing
      const refusals: [string[], RegExp][] = [
        [['network', 'connect', 'nope', 'c1'], /network nope not found/],
        [['network', 'connect', 'netp', 'c1'], /network netp is not manually attachable/],
        [['network', 'connect', 'netb', 'nosuch'], /No such container: nosuch/],
        [
          ['network', 'connect', 'netb', 'c0'],
          /container c0 cannot be connected to network netb: it is not on an attachable overlay/,
        ],
        [['network', 'disconnect', 'netb', 'c1'], /container c1 is not connected to network netb/],
        [['network', 'disconnect', 'netb', 'nosuch'], /No such container: nosuch/],
      ];
      const refuse = async (args: string[], msg: RegExp): Promise<void> => {
        const netb = JSON.stringify((await inspectNet('netb')).Containers);
        const ifs = await c1Addrs();
        const r = await onHost(C, args);
        assert.notEqual(r.code, 0, `${args.join(' ')} must be refused`);
        assert.match(r.stderr, msg);
        assert.equal(JSON.stringify((await inspectNet('netb')).Containers), netb, `${args.join(' ')}: netb unchanged`);
        assert.equal(await c1Addrs(), ifs, `${args.join(' ')}: c1's interfaces unchanged`);
      };
      for (const [args, msg] of refusals) await refuse(args, msg);

      // connect: a second interface in c1 with an address of netb, its route, its names
      const connectAndCheck = async (): Promise<string> => {
        await ok(C, ['network', 'connect', '--alias', 'cb', 'netb', 'c1']);
        const entry = (await inspectNet('netb')).Containers?.[await idOf(C, 'c1')];
        assert.ok(entry, 'network inspect netb lists c1 by its ID');
        assert.equal(entry.Name, 'c1');
        const addr = entry.IPv4Address.split('/')[0] ?? '';
        assert.ok(inSubnet(addr, netbSubnet), `c1's address ${addr} is in ${netbSubnet}`);
        assert.match(await c1Addrs(), new RegExp(`eth\\d+\\s+inet ${esc(addr)}/`));
        const routes = await inContainer(C, 'c1', ['ip', 'route']);
        assert.match(routes, new RegExp(`^${esc(netbSubnet)} dev eth\\d+`, 'm'), 'the subnet route of netb');
        assert.match(routes, /^default via 198\.19\.255\.\d+ dev eth1/m, 'the default route stays on the gateway leg');
        const nets = await c1Networks();
        assert.deepEqual(Object.keys(nets).sort(), ['neta', 'netb']);
        assert.equal(nets['netb'], entry.IPv4Address);
        return addr;
      };
      let c1b = await connectAndCheck();
      await refuse(
        ['network', 'connect', 'netb', 'c1'],
        /^Error response from daemon: endpoint with name c1 already exists in network netb$/m,
      );
      await refuse(['network', 'disconnect', 'neta', 'c1'], /cannot be disconnected from network neta/);

      // c1 -> web by name (the VIP on netb); web's task -> c1 by its name and its alias
      await until('web resolves to its VIP in c1', async () =>
        (await lookup(C, 'c1', 'web')).includes(vip) ? true : undefined,
      );
      await until('c1 reaches web by name (its task answers with its hostname)', async () =>
        /^[0-9a-f]{12}$/.test(await get(C, 'c1', 'web')) ? true : undefined,
      );
      for (const name of ['c1', 'cb']) {
        await until(`${name} resolves to c1's netb address in the web task`, async () =>
          (await lookup(W, webTask, name)).includes(c1b) ? true : undefined,
        );
        await until(`the web task reaches ${name}`, async () =>
          (await get(W, webTask, name)) === 'c1-body' ? true : undefined,
        );
      }

      // shoald of c1's node killed (the manager too) and started again: it takes the leg back (interface, DNS scope)
      const lab = async (args: string[]): Promise<void> => {
        const r = await shoal(['lab', ...args]);
        assert.equal(r.code, 0, `lab ${args.join(' ')}: ${r.stderr}`);
      };
      // c3 (`--restart always`) on neta and netb, stopped by the user: it gives its attachments back
      await ok(C, [
        'container',
        'run',
        ...insecure,
        '-d',
        '--name',
        'c3',
        '--restart',
        'always',
        '--network',
        'neta',
        image,
        'sleep',
        '3600',
      ]);
      await ok(C, ['network', 'connect', 'netb', 'c3']);
      await ok(C, ['container', 'stop', '-t', '1', 'c3']);
      await until('a stopped c3 is on no network', async () => {
        const [a, b] = [(await inspectNet('neta')).Containers, (await inspectNet('netb')).Containers];
        return a?.['c3'] === undefined && b?.['c3'] === undefined ? true : undefined;
      });
      await lab(['stop', labName, C, '--signal', 'KILL']);
      await lab(['start', labName, C]);
      // Docker's daemon start: an `always` container starts, here on its networks again
      await until('shoald started c3 again on neta and netb, in order', async () => {
        const r = await onHost(C, [
          'container',
          'inspect',
          '--format',
          '{{.State.Status}} {{json .NetworkSettings.Networks}}',
          'c3',
        ]);
        lastOutput = `${r.stdout}${r.stderr}`;
        if (r.code !== 0 || !r.stdout.startsWith('running ')) return undefined;
        const nets = Object.keys(JSON.parse(r.stdout.slice('running '.length)) as Record<string, unknown>);
        return nets.join(',') === 'neta,netb' ? true : undefined;
      });
      await until('c3 reaches c2 on neta', async () => ((await get(C, 'c3', 'c2')) === 'c2-body' ? true : undefined));
      await until('c3 reaches web on netb', async () =>
        /^[0-9a-f]{12}$/.test(await get(C, 'c3', 'web')) ? true : undefined,
      );
      await ok(C, ['container', 'rm', '-f', 'c3']);
      await until('container inspect lists both networks again (once shoald answers)', async () => {
        const r = await onHost(C, ['container', 'inspect', '--format', '{{json .NetworkSettings.Networks}}', 'c1']);
        lastOutput = `${r.stdout}${r.stderr}`;
        return r.code === 0 && /"neta"/.test(r.stdout) && /"netb"/.test(r.stdout) ? true : undefined;
      });
      assert.match(await c1Addrs(), new RegExp(`inet ${esc(c1b)}/`));
      await until('web still resolves in c1 after the restart', async () =>
        (await lookup(C, 'c1', 'web')).includes(vip) ? true : undefined,
      );

      // stopped, c1 gives every attachment back; started again it is on both networks again, in
      // order (neta first, netb on eth2 with its alias), and reaches and is reached on each
      await ok(C, ['container', 'stop', '-t', '1', 'c1']);
      await until('a stopped c1 is on no network', async () => {
        const [a, b] = [(await inspectNet('neta')).Containers, (await inspectNet('netb')).Containers];
        return a === null && b === null ? true : undefined;
      });
      await ok(C, ['container', 'start', 'c1']);
      const again = await c1Networks();
      assert.deepEqual(Object.keys(again), ['neta', 'netb'], 'both networks, the first one first');
      const c1b2 = again['netb']?.split('/')[0] ?? '';
      const c1a2 = again['neta']?.split('/')[0] ?? '';
      assert.ok(inSubnet(c1b2, netbSubnet), `c1's new address ${c1b2} is in ${netbSubnet}`);
      assert.match(await c1Addrs(), new RegExp(`eth2\\s+inet ${esc(c1b2)}/`), 'netb on eth2 again');
      assert.equal((await inspectNet('netb')).Containers?.[await idOf(C, 'c1')]?.IPv4Address.split('/')[0], c1b2);
      before = (await c1Addrs())
        .split('\n')
        .filter((l) => !l.includes(`inet ${c1b2}/`))
        .join('\n');
      c1b = c1b2; // the disconnect below takes this address away
      // on netb: web by its VIP from c1; c1 and its alias cb from web's task
      await until('web resolves to its VIP in c1 after the start', async () =>
        (await lookup(C, 'c1', 'web')).includes(vip) ? true : undefined,
      );
      await until('c1 reaches web after the start', async () =>
        /^[0-9a-f]{12}$/.test(await get(C, 'c1', 'web')) ? true : undefined,
      );
      for (const name of ['c1', 'cb']) {
        await until(`${name} resolves to c1's new netb address in the web task`, async () =>
          (await lookup(W, webTask, name)).includes(c1b2) ? true : undefined,
        );
        await until(`the web task reaches ${name} after the start`, async () =>
          (await get(W, webTask, name)) === 'c1-body' ? true : undefined,
        );
      }
      // on neta: c2 on the other host, both ways
      await until('c2 resolves to its neta address in c1', async () =>
        (await lookup(C, 'c1', 'c2')).includes(c2a) ? true : undefined,
      );
      await until('c1 reaches c2 on neta', async () => ((await get(C, 'c1', 'c2')) === 'c2-body' ? true : undefined));
      await until('c1 resolves to its new neta address in c2', async () =>
        (await lookup(W, 'c2', 'c1')).includes(c1a2) ? true : undefined,
      );
      await until('c2 reaches c1 on neta', async () => ((await get(W, 'c2', 'c1')) === 'c1-body' ? true : undefined));

      // disconnect: the interface, address, route and names go
      await ok(C, ['network', 'disconnect', 'netb', 'c1']);
      assert.equal((await inspectNet('netb')).Containers, null, 'netb lists no container');
      assert.doesNotMatch(await c1Addrs(), new RegExp(`inet ${esc(c1b)}/`));
      assert.doesNotMatch(await inContainer(C, 'c1', ['ip', 'route']), new RegExp(`^${esc(netbSubnet)} `, 'm'));
      assert.deepEqual(Object.keys(await c1Networks()), ['neta']);
      assert.equal(await c1Addrs(), before, "c1's interfaces are those it started with");
      // (not to anything of netb: a name the cluster does not answer goes to the host's resolvers)
      const netbAddr = (a: string): boolean => inSubnet(a, netbSubnet);
      await until('web no longer resolves in c1', async () =>
        (await lookup(C, 'c1', 'web')).some(netbAddr) ? undefined : true,
      );
      assert.equal(await get(C, 'c1', vip), '', 'the VIP does not answer c1');
      await until("c1's names no longer resolve in the web task", async () => {
        const seen = [...(await lookup(W, webTask, 'c1')), ...(await lookup(W, webTask, 'cb'))];
        return seen.some(netbAddr) ? undefined : true;
      });
      assert.equal(await get(W, webTask, c1b), '', "c1's old address does not answer the web task");
      // a disconnected network is not attached again at the next start
      await ok(C, ['container', 'stop', '-t', '1', 'c1']);
      await ok(C, ['container', 'start', 'c1']);
      assert.deepEqual(Object.keys(await c1Networks()), ['neta'], 'only neta after a stop/start');
      before = await c1Addrs();
      assert.equal((await inspectNet('netb')).Containers, null, 'netb lists no container');

      // connected again; with netb otherwise unused, network rm is refused naming c1 until the
      // disconnect, then done at once
      await connectAndCheck();
      await ok('h1', ['service', 'rm', 'web']);
      await until('network rm netb refused naming only c1', async () => {
        const r = await onHost('h1', ['network', 'rm', 'netb']);
        lastOutput = r.stderr;
        assert.notEqual(r.code, 0, 'network rm must be refused while c1 is connected');
        return /in use by container c1: remove it first/.test(r.stderr) ? true : undefined;
      });
      await ok(C, ['network', 'disconnect', '-f', 'netb', 'c1']);
      await ok('h1', ['network', 'rm', 'netb']);
      assert.equal(await c1Addrs(), before);
      // container rm gives every attachment of the container back: its connected networks too
      await ok('h1', ['network', 'create', '-d', 'overlay', '--attachable', 'netc']);
      await ok(C, ['network', 'connect', 'netc', 'c1']);
      assert.ok((await inspectNet('netc')).Containers?.[await idOf(C, 'c1')], 'network inspect netc lists c1');
      await ok(C, ['container', 'rm', '-f', 'c1', 'c0']);
      await ok(W, ['container', 'rm', '-f', 'c2']);
      assert.equal((await inspectNet('netc')).Containers, null, 'netc lists nothing once c1 is removed');
      await ok('h1', ['network', 'rm', 'netc']);
      await ok('h1', ['network', 'rm', 'neta', 'netp']);
    } finally {
      for (const h of HOSTS) await onHost(h, ['container', 'rm', '-f', 'c1', 'c0', 'c2', 'c3']);
      await onHost('h1', ['network', 'rm', 'netc', 'netb', 'neta', 'netp']);
    }

    // nothing left on any host but the nodes' ingress sandboxes
    const ingressId = (await ok('h1', ['network', 'inspect', '--format', '{{.Id}}', 'ingress'])).trim();
    const ingressNs = tags.map((t) => `shoal-ov-${t}-${ingressId.slice(0, 12).toLowerCase()}`);
    const ours = (n: string): boolean => tags.some((tag) => n.includes(`-${tag}-`)) && !ingressNs.includes(n);
    await until('no namespaces of the cluster left', () =>
      Promise.resolve(existsSync('/run/netns') && readdirSync('/run/netns').some(ours) ? undefined : true),
    );
    for (const h of state.hosts) {
      await until(`no links or tables left on ${h.name}`, async () => {
        const links = await run('nsenter', [`--net=/run/netns/${h.netns}`, '--', 'ip', '-o', 'link', 'show']);
        const tables = await run('nsenter', [`--net=/run/netns/${h.netns}`, '--', 'nft', 'list', 'tables']);
        lastOutput = `${h.name}: ${links.stdout} ${tables.stdout}`;
        const left =
          /shoal_gwbridge|vxlan|gw[0-9a-f]{11}|vo[0-9a-f]{11}/.test(links.stdout) || /shoal_/.test(tables.stdout);
        return left ? undefined : true;
      });
    }
    for (const h of HOSTS)
      assert.doesNotMatch(await ok(h, ['container', 'ls', '-a', '--format', '{{.Names}}']), /^(web\.|c[0-3]$)/m);
  },
);
