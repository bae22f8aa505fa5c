/**
 * The embedded DNS as a user meets it the first time, on a lab of 2 (1 manager h1, 1 worker h2)
 * through the real `shoal` CLI and each host's shoald: a service `web` on an attachable overlay
 * runs on h1 only; on h2, which has no task of it, a new plain container on that network asks
 * ONCE, right after it starts (no retry, no waiting for the names to arrive):
 *
 * - `nslookup web` gets web's VIP;
 * - `nslookup nosuch` gets an answer saying the name does not exist or the lookup failed
 *   (busybox: "can't find"), not "timed out": the lab host has no default route, so the upstream
 *   (the machine's resolver) cannot be reached, and the server must say so at once;
 * - `nslookup web.<network>` and `tasks.web.<network>` get the VIP and the task's address, as
 *   `web` and `tasks.web` do (Docker's `<name>.<network name>`).
 *
 * Judged by the container's output (`container run --rm` may report the removed container after
 * printing it: its exit code is not the point here). Root only; the lab goes in `after`.
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
  rootPrefix: 'shoal-dnslab-',
  labPrefix: 'dl',
  cleanup: async () => {
    for (const n of existsSync('/run/netns') ? readdirSync('/run/netns') : [])
      if (tags.some((tag) => n.includes(`-${tag}-`))) await run('ip', ['netns', 'del', n], { check: false });
  },
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

/** The name tag of a node in namespace names (as the daemon makes it from the node ID). */
function tagOf(nodeId: string): string {
  return nodeId
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 10);
}

/** The addresses busybox nslookup printed as answers (after a `Name:` line). */
function answers(out: string): string[] {
  const after = out
    .split(/Name:\s/)
    .slice(1)
    .join('\n');
  return [...after.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1] ?? '').sort();
}

test(
  'a new container asks once, right after it starts: service names, <name>.<network>, and a fast answer for unknown names',
  { timeout: 900_000 },
  async () => {
    const up = await shoal(['lab', 'up', '--name', labName, '--hosts', '2', '--managers', '1']);
    assert.equal(up.code, 0, up.stderr);
    const state = await readLabState(labName);
    assert.ok(state?.registry, 'the lab has a registry');
    const image = (await pushTestImages(state.registry.url, { only: [TestImages.busybox] }))[0]?.remoteRef ?? '';
    assert.match(image, /busybox/);
    const nodeIds = (await ok('h1', ['node', 'ls', '--format', '{{.ID}}'])).split('\n').filter((l) => l !== '');
    assert.equal(nodeIds.length, 2);
    tags = nodeIds.map(tagOf);
    const insecure = ['--insecure-registry', new URL(state.registry.url).host];
    const net = `tools${labName.slice(3)}`;

    await ok('h1', ['network', 'create', '-d', 'overlay', '--attachable', net]);
    await ok('h1', [
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--network',
      net,
      '--constraint',
      'node.hostname==h1',
      image,
      'sleep',
      '100000',
    ]);
    await until('web running on h1', async () => {
      const out = await ok('h1', [
        'service',
        'ps',
        '--filter',
        'desired-state=running',
        '--format',
        '{{.Node}} {{.CurrentState}}',
        'web',
      ]);
      return /^h1 Running /m.test(out) ? true : undefined;
    });
    const vips = JSON.parse(
      await ok('h1', ['service', 'inspect', '--format', '{{json .Endpoint.VirtualIPs}}', 'web']),
    ) as { Addr: string }[];
    const vip = vips[0]?.Addr.split('/')[0] ?? '';
    assert.match(vip, /^\d+\.\d+\.\d+\.\d+$/);

    // h2 has no task of web: the container is the first thing of the network there
    const script = [
      'nslookup web',
      'echo =====',
      'nslookup nosuch',
      'echo =====',
      `nslookup web.${net}`,
      'echo =====',
      `nslookup tasks.web.${net}`,
      'echo =====',
      'nslookup tasks.web',
    ].join('; ');
    const r = await onHost('h2', [
      'container',
      'run',
      ...insecure,
      '--rm',
      '--network',
      net,
      image,
      'sh',
      '-c',
      script,
    ]);
    const out = r.stdout;
    const [web = '', nosuch = '', webNet = '', tasksNet = '', tasks = ''] = out.split('=====');
    const all = `exit ${r.code}\nstdout:\n${out}\nstderr:\n${r.stderr}`;
    assert.deepEqual(answers(web), [vip], `nslookup web, asked once at start: ${all}`);
    assert.match(nosuch, /can't find nosuch/, `nslookup nosuch is answered: ${all}`);
    assert.doesNotMatch(out, /timed out|no servers could be reached/, all);
    assert.deepEqual(answers(webNet), [vip], `nslookup web.${net}: ${all}`);
    // the one task's address, as `tasks.web` gives it
    assert.equal(answers(tasks).length, 1, `nslookup tasks.web: ${all}`);
    assert.deepEqual(answers(tasksNet), answers(tasks), `nslookup tasks.web.${net}: ${all}`);

    await ok('h1', ['service', 'rm', 'web']);
    await until('the network can be removed', async () =>
      (await onHost('h1', ['network', 'rm', net])).code === 0 ? true : undefined,
    );
  },
);
