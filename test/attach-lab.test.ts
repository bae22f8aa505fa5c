/**
 * Plain containers on an attachable overlay, end to end on a lab of 2 (h1 manager, h2 worker)
 * through the real `shoal` CLI and every host's real shoald, as
 * `docker network create -d overlay --attachable net; docker run --network net --name c ...`:
 *
 * - a service on the attachable overlay on h2, `shoal container run --network attnet --name c1
 *   --network-alias calias` on h1: the container has an address of the network's subnet
 *   (`network inspect` on h1 lists it, and only the local node's containers, as Docker's),
 *   reaches the service by name (TCP through its VIP, the embedded DNS at 127.0.0.11), and the
 *   service's task reaches the container by its name and its alias; its default route is the
 *   gateway bridge (egress: the lab registry answers through the NAT);
 * - a non-attachable network is refused with Docker's message and an unknown one as not found,
 *   and nothing is made (no container, no attachment);
 * - a `-d --rm` container on h2 reaches c1 by name; once stopped shoald removes it and gives its
 *   attachment back with no CLI involved (the node owns attachments), and h1 drops its peer
 *   entries;
 * - `container stop c1` gives c1's attachment back (as Docker's: not listed, its sandbox gone, it
 *   no longer holds the network), `container start c1` attaches it again, reachable by name;
 * - `network rm` is refused naming the container while it is attached; after `container rm` the
 *   attachment is gone at once (`network rm` succeeds on the first try) and nothing is left on any
 *   host: no namespace of the cluster, no gateway bridge, vxlan or veth, no nftables table, no
 *   container.
 *
 * Images come from the lab's registry. Root only; the lab goes in `after` (lab-test-rig.ts), also
 * when a test fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { run, waitFor, type RunResult } from '@shoal/common';
import { pushTestImages, readLabState, TestImages } from '@shoal/testkit';
import { cliMain, labTestRig, removeNamespacesTagged } from './lab-test-rig.js';

const HOSTS = ['h1', 'h2'];
/** The namespace-name tags of the cluster's nodes (their namespaces are removed in `after` too). */
let tags: string[] = [];

const { labName, shoal } = await labTestRig({
  rootPrefix: 'shoal-attlab-',
  labPrefix: 'al',
  cleanup: () => removeNamespacesTagged(tags),
});

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

/** Output of a command in a container on `host` (a task's or a plain one). */
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

interface Inspected {
  IPAM: { Config: { Subnet: string }[] };
  Containers: Record<string, { Name: string; EndpointID: string; IPv4Address: string }> | null;
}

/** `network inspect` on h1 (the manager; a worker's daemon does not serve it). */
async function inspectNet(name: string): Promise<Inspected> {
  const out = await ok('h1', ['network', 'inspect', name]);
  return (JSON.parse(out) as Inspected[])[0] as Inspected;
}

function inSubnet(addr: string, subnet: string): boolean {
  const [net, len] = subnet.split('/');
  const n = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const mask = 2 ** 32 - 2 ** (32 - Number(len));
  return (n(addr) & mask) >>> 0 === (n(net ?? '') & mask) >>> 0;
}

const HOSTNAME = /^[0-9a-f]{12}$/;

/** The name tag of a node in namespace names (as the daemon makes it from the node ID). */
function tagOf(nodeId: string): string {
  return nodeId
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 10);
}

/** The addresses of the neighbour entries on an overlay's vxlan0 (its remote peers). */
async function neighbours(ns: string): Promise<string[]> {
  const neigh = await run('ip', ['-n', ns, 'neigh', 'show', 'dev', 'vxlan0'], { check: false });
  lastOutput = `${ns}: neigh ${neigh.stdout}${neigh.stderr}`;
  return [...neigh.stdout.matchAll(/^(\d+\.\d+\.\d+\.\d+) /gm)].map((m) => m[1] ?? '');
}

test(
  'container run --network on an attachable overlay: reach and be reached by name, refusals, release on rm',
  { timeout: 900_000 },
  async () => {
    const up = await shoal(['lab', 'up', '--name', labName, '--hosts', '2', '--managers', '1']);
    assert.equal(up.code, 0, up.stderr);
    const state = await readLabState(labName);
    assert.ok(state?.registry, 'the lab has a registry');
    const pushed = await pushTestImages(state.registry.url, { only: [TestImages.busybox] });
    const image = pushed[0]?.remoteRef ?? '';
    assert.match(image, /busybox/);
    const nodeIds = (await ok('h1', ['node', 'ls', '--format', '{{.ID}}'])).split('\n').filter((l) => l !== '');
    assert.equal(nodeIds.length, 2);
    tags = nodeIds.map(tagOf);
    const plain = ['c1', 'c2', 'cx', 'cy'];
    // the CLI pulls the image itself, from the lab's plain-HTTP registry
    const insecure = ['--insecure-registry', new URL(state.registry.url).host];
    try {
      await ok('h1', ['network', 'create', '-d', 'overlay', '--attachable', 'attnet']);
      await ok('h1', ['network', 'create', '-d', 'overlay', 'plainnet']);
      const httpd = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'];
      await ok('h1', [
        'service',
        'create',
        '-d',
        '--name',
        'web',
        '--network',
        'attnet',
        '--constraint',
        'node.hostname==h2',
        image,
        ...httpd,
      ]);
      const webTask = await until('web running on h2', async () => {
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
        const l = out.split('\n').find((x) => /^h2 Running /.test(x));
        return l?.split(' ').at(-1);
      });

      // refusals first: nothing may be made by them
      const refusedPlain = await onHost('h2', [
        'container',
        'run',
        ...insecure,
        '-d',
        '--name',
        'cx',
        '--network',
        'plainnet',
        image,
        'true',
      ]);
      assert.equal(refusedPlain.code, 1, refusedPlain.stderr);
      assert.match(
        refusedPlain.stderr,
        /^shoal: network plainnet is not manually attachable \[MANAGER_NETWORK_NOT_ATTACHABLE\]$/m,
      );
      const refusedUnknown = await onHost('h2', [
        'container',
        'run',
        ...insecure,
        '-d',
        '--name',
        'cy',
        '--network',
        'nope',
        image,
        'true',
      ]);
      assert.equal(refusedUnknown.code, 1, refusedUnknown.stderr);
      assert.match(refusedUnknown.stderr, /^shoal: network nope not found \[MANAGER_NETWORK_NOT_FOUND\]$/m);
      assert.doesNotMatch(await ok('h2', ['container', 'ls', '-a', '--format', '{{.Names}}']), /^(cx|cy)$/m);
      assert.equal((await inspectNet('plainnet')).Containers, null, 'no attachment on plainnet');

      // the plain container on h1, serving its own name
      const serve = ['sh', '-c', 'mkdir -p /www && echo c1-body > /www/index.html && exec httpd -f -p 80 -h /www'];
      await ok('h1', [
        'container',
        'run',
        ...insecure,
        '-d',
        '--name',
        'c1',
        '--network',
        'attnet',
        '--network-alias',
        'calias',
        image,
        ...serve,
      ]);
      // listed by its full container ID, as Docker's, with its name inside
      const c1Id = (await ok('h1', ['container', 'inspect', '--format', '{{.Id}}', 'c1'])).trim();
      assert.match(c1Id, /^[0-9a-f]{64}$/);
      const net = await inspectNet('attnet');
      const entry = net.Containers?.[c1Id];
      assert.ok(entry, `network inspect lists c1 by its ID: ${JSON.stringify(net.Containers)}`);
      assert.equal(entry.Name, 'c1');
      const c1Addr = entry.IPv4Address.split('/')[0] ?? '';
      const subnet = net.IPAM.Config[0]?.Subnet ?? '';
      assert.ok(inSubnet(c1Addr, subnet), `c1's address ${c1Addr} is in ${subnet}`);
      assert.match(
        await inContainer('h1', 'c1', ['ip', 'addr', 'show', 'eth0']),
        new RegExp(`inet ${c1Addr.replace(/\./g, '\\.')}/`),
      );
      assert.match(await inContainer('h1', 'c1', ['cat', '/etc/resolv.conf']), /^nameserver 127\.0\.0\.11$/m);

      // container -> service by name: the VIP, and TCP through it to the task on h2
      const vips = JSON.parse(
        await ok('h1', ['service', 'inspect', '--format', '{{json .Endpoint.VirtualIPs}}', 'web']),
      ) as { Addr: string }[];
      const vip = vips[0]?.Addr.split('/')[0] ?? '';
      await until('web resolves to its VIP from c1', async () =>
        (await lookup('h1', 'c1', 'web')).includes(vip) ? true : undefined,
      );
      const webBody = await until('c1 reaches web by name', async () => {
        const b = await get('h1', 'c1', 'web');
        return HOSTNAME.test(b) ? b : undefined;
      });
      assert.ok(webBody);

      // service task -> container by its name and its alias
      for (const name of ['c1', 'calias']) {
        await until(`${name} resolves to c1's address from the web task`, async () =>
          (await lookup('h2', webTask, name)).includes(c1Addr) ? true : undefined,
        );
        assert.equal(
          await until(`web task reaches ${name}`, async () => {
            const b = await get('h2', webTask, name);
            return b === 'c1-body' ? b : undefined;
          }),
          'c1-body',
        );
      }

      // egress through the gateway bridge: the default route, and the lab registry through the NAT
      assert.match(await inContainer('h1', 'c1', ['ip', 'route']), /^default via 198\.19\.255\.\d+ dev eth1/m);
      const reg = new URL(state.registry.url);
      const v2 = await inContainer('h1', 'c1', [
        'sh',
        '-c',
        `printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${reg.hostname} ${reg.port || '80'} | head -n 1`,
      ]);
      assert.match(v2, /^HTTP\/1\.[01] 200/, `the registry answers c1 through the gateway bridge: ${v2}`);

      // a -d --rm container: shoald removes it when it exits and gives its attachment back by itself
      await ok('h2', [
        'container',
        'run',
        ...insecure,
        '-d',
        '--rm',
        '--name',
        'c2',
        '--network',
        'attnet',
        image,
        'sleep',
        '3600',
      ]);
      // network inspect on h1 lists h1's containers only, as Docker's: not c2 (on h2)
      assert.deepEqual(Object.keys((await inspectNet('attnet')).Containers ?? {}), [c1Id], 'only the local c1');
      const c2Addr = (/inet (\d+\.\d+\.\d+\.\d+)\//.exec(
        await inContainer('h2', 'c2', ['ip', 'addr', 'show', 'eth0']),
      ) ?? [])[1];
      assert.ok(c2Addr !== undefined && inSubnet(c2Addr, subnet), `c2's address ${c2Addr} is in ${subnet}`);
      // from h2 it reaches c1 on h1 by name
      await until('c2 reaches c1 by name', async () =>
        (await get('h2', 'c2', 'c1')) === 'c1-body' ? true : undefined,
      );
      // while it lives it is a peer of h1's overlay (c1's host): FDB and neighbour entries
      const netId = (await ok('h1', ['network', 'inspect', '--format', '{{.Id}}', 'attnet'])).trim();
      const h1Id = (await ok('h1', ['node', 'inspect', '--format', '{{.ID}}', 'h1'])).trim();
      const h1Overlay = `shoal-ov-${tagOf(h1Id)}-${netId.slice(0, 12).toLowerCase()}`;
      await until('c2 is a peer on h1', async () =>
        (await neighbours(h1Overlay)).includes(c2Addr) ? true : undefined,
      );
      // it stops: shoald removes it (--rm) and gives the attachment back; no CLI asks for that.
      // (shoald's collector removes it as soon as it exited: the stop must not fail on that)
      await ok('h2', ['container', 'stop', '-t', '1', 'c2']);
      await until('c2 gone', async () => {
        const names = (await ok('h2', ['container', 'ls', '-a', '--format', '{{.Names}}'])).split('\n');
        return !names.includes('c2') ? true : undefined;
      });
      // its attachment too: h1 drops its peer entries (and network rm below names no c2)
      await until('h1 drops the peer entries of c2', async () =>
        (await neighbours(h1Overlay)).includes(c2Addr) ? undefined : true,
      );

      // c1 stops: it gives its attachment back, as Docker's (its address, its sandbox on h1), so
      // it no longer holds the network; started again it is attached again and reachable by name
      const c1Task = (
        JSON.parse(await ok('h1', ['container', 'inspect', 'c1'])) as { Config: { Labels: Record<string, string> } }[]
      )[0]?.Config.Labels['com.shoal.network.attachment'];
      assert.ok(c1Task, 'c1 names its attachment');
      await ok('h1', ['container', 'stop', '-t', '1', 'c1']);
      await until('c1 no longer listed once stopped', async () =>
        (await inspectNet('attnet')).Containers?.[c1Id] === undefined ? true : undefined,
      );
      await until("c1's sandbox removed on h1", () =>
        Promise.resolve(readdirSync('/run/netns').some((n) => n.includes(c1Task.slice(0, 12))) ? undefined : true),
      );
      const inUse = await onHost('h1', ['network', 'rm', 'attnet']);
      assert.equal(inUse.code, 5, `network rm refused for the service only: ${inUse.stderr}`);
      assert.doesNotMatch(inUse.stderr, /container /, 'neither the stopped c1 nor the removed c2 holds the network');
      await ok('h1', ['container', 'start', 'c1']);
      const again = await until('c1 listed again once started', async () => {
        const e = (await inspectNet('attnet')).Containers?.[c1Id];
        return e ? e.IPv4Address.split('/')[0] : undefined;
      });
      assert.ok(again !== undefined && inSubnet(again, subnet), `c1's new address ${again} is in ${subnet}`);
      await until('c1 resolves to its new address from the web task', async () =>
        (await lookup('h2', webTask, 'c1')).includes(again) ? true : undefined,
      );
      await until('the web task reaches c1 by name again', async () =>
        (await get('h2', webTask, 'c1')) === 'c1-body' ? true : undefined,
      );

      // a service task on h1 is listed too: by its container's ID, named <service>.<slot>.<task ID>
      await ok('h1', [
        'service',
        'create',
        '-d',
        '--name',
        'near',
        '--network',
        'attnet',
        '--constraint',
        'node.hostname==h1',
        image,
        'sleep',
        '3600',
      ]);
      const nearTask = await until('near running on h1', async () => {
        const out = await ok('h1', [
          'service',
          'ps',
          '--no-trunc',
          '--format',
          '{{.Node}} {{.CurrentState}} {{.Name}}.{{.ID}}',
          'near',
        ]);
        return out
          .split('\n')
          .find((x) => /^h1 Running /.test(x))
          ?.split(' ')
          .at(-1);
      });
      const [nearKey, nearEntry] = await until('network inspect lists the near task', async () =>
        Object.entries((await inspectNet('attnet')).Containers ?? {}).find(([, e]) => e.Name === nearTask),
      );
      assert.match(nearKey, /^[0-9a-f]{64}$/);
      assert.ok(inSubnet(nearEntry.IPv4Address.split('/')[0] ?? '', subnet), `near's address is in ${subnet}`);
      assert.match(await ok('h1', ['container', 'inspect', '--format', '{{.Name}}', nearKey]), new RegExp(nearTask));
      await ok('h1', ['service', 'rm', 'near']);
      await until('the near task no longer listed', async () =>
        Object.values((await inspectNet('attnet')).Containers ?? {}).some((e) => e.Name === nearTask)
          ? undefined
          : true,
      );

      // network rm refused while c1 is attached; after container rm it goes at once
      await ok('h1', ['service', 'rm', 'web']);
      await until('network rm refused naming only c1', async () => {
        const r = await onHost('h1', ['network', 'rm', 'attnet']);
        lastOutput = r.stderr;
        assert.notEqual(r.code, 0, 'network rm must be refused while c1 is attached');
        return r.code === 5 && /in use by container c1: remove it first/.test(r.stderr) ? true : undefined;
      });
      await ok('h1', ['container', 'rm', '-f', 'c1']);
      assert.equal((await inspectNet('attnet')).Containers, null, 'c1 is no longer listed');
      await ok('h1', ['network', 'rm', 'attnet']);
      await ok('h1', ['network', 'rm', 'plainnet']);
    } finally {
      for (const h of HOSTS) await onHost(h, ['container', 'rm', '-f', ...plain]);
    }

    // nothing left on any host but the nodes' ingress sandboxes (they stay while the node is in
    // the swarm, as Docker's ingress-sbox; network inspect ingress lists h1's as Docker's does)
    const ingress = JSON.parse(
      await ok('h1', ['network', 'inspect', '--format', '{{json .Containers}}', 'ingress']),
    ) as Record<string, { Name: string; IPv4Address: string }>;
    assert.deepEqual(Object.keys(ingress), ['ingress-sbox']);
    assert.equal(ingress['ingress-sbox']?.Name, 'ingress-endpoint');
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
    for (const h of HOSTS) {
      const out = await ok(h, ['container', 'ls', '-a', '--format', '{{.Names}}']);
      assert.doesNotMatch(out, /^(web\.|near\.|c1$|c2$|cx$|cy$)/m, `containers left on ${h}`);
    }
  },
);
