/**
 * `shoal network create|ls|inspect|rm|prune` (and connect|disconnect, connect.ts): swarm (overlay) networks through the daemon's
 * Control service, with docker's columns, filters and JSON (view.ts).
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { RemoteError, type Network, type Node, type Task } from '@shoal/api';
import { errnoCode, errorKind, hasCode } from '@shoal/common';
import { EXIT_CODE_OF_KIND, daemonAction, failureLine } from '../daemon/action.js';
import type { DaemonClient } from '../daemon/client.js';
import { checkFormat, formatInspect, formatList, matchLabels, matchesAny, parseFilters } from '../format/index.js';
import { findObject } from '../secret/objects.js';
import { openEngine, withRoots, type GlobalOpts } from '../commands/container.js';
import { registerConnect } from './connect.js';
import { networkContainers, networkPeers, networkResource, networkSpecFromFlags, type CreateFlags } from './view.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

async function listAll(c: DaemonClient): Promise<Network[]> {
  return (await c.control.listNetworks({})).Networks ?? [];
}

/** Nodes and tasks for `Peers`; none when the daemon cannot list them (Peers is then left out). */
async function placement(c: DaemonClient): Promise<{ nodes: Node[]; tasks: Task[] }> {
  try {
    const [nodes, tasks] = await Promise.all([c.control.listNodes({}), c.control.listTasks({})]);
    return { nodes: nodes.Nodes ?? [], tasks: tasks.Tasks ?? [] };
  } catch (err) {
    // a daemon that refuses the listing (a worker's socket, no leader): Peers is left out
    if (err instanceof RemoteError) return { nodes: [], tasks: [] };
    throw err;
  }
}

/** The ID of the node whose daemon the CLI talks to ('' when it cannot tell: no Containers then). */
async function localNode(c: DaemonClient): Promise<string> {
  try {
    return (await c.swarm.info({})).NodeID ?? '';
  } catch (err) {
    if (err instanceof RemoteError) return '';
    throw err;
  }
}

/**
 * The full IDs of the plain containers attached on node `self` (their attachment tasks name them),
 * from the engine this CLI opens, by name. Names it does not know (the CLI runs with another data
 * root than the containers') are left out, and all of them when it may not read the engine.
 */
async function plainContainerIds(o: GlobalOpts, tasks: readonly Task[], self: string): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const names = new Set(
    tasks.flatMap((t) => {
      const name = t.Spec?.NetworkAttachmentSpec?.ContainerID;
      return name !== undefined && t.NodeID === self && self !== '' ? [name] : [];
    }),
  );
  if (names.size === 0) return ids;
  let engine;
  try {
    engine = await openEngine(o, false, false);
  } catch (err) {
    // a CLI that may not read the engine (not root): the names stay the keys
    if (errnoCode(err) === 'EACCES' || errnoCode(err) === 'EPERM') return ids;
    throw err;
  }
  try {
    for (const name of names) {
      try {
        ids.set(name, (await engine.inspect(name)).id);
      } catch (err) {
        if (!hasCode(err, 'ENGINE_CONTAINER_NOT_FOUND')) throw err;
      }
    }
  } finally {
    await engine.close();
  }
  return ids;
}

function find(all: readonly Network[], ref: string): Network {
  return findObject(all, 'network', ref);
}

async function confirm(question: string): Promise<boolean> {
  process.stderr.write(`${question} [y/N] `);
  const rl = createInterface({ input: process.stdin });
  const line = await new Promise<string>((resolve) => {
    rl.once('line', resolve);
    rl.once('close', () => resolve(''));
  });
  rl.close();
  return /^y(es)?$/i.test(line.trim());
}

export function registerNetwork(program: Command): void {
  const cmd = program.command('network').description('Manage swarm networks');
  registerConnect(cmd);

  cmd
    .command('create')
    .description('Create a network (overlay, cluster-wide)')
    .argument('<name>')
    .option('-d, --driver <driver>', 'driver to manage the network (only overlay)', 'overlay')
    .option('--subnet <cidr>', 'subnet in CIDR format', collect, [])
    .option('--gateway <ip>', 'IPv4 gateway for the subnet', collect, [])
    .option('--ip-range <cidr>', 'allocate task addresses from a sub-range', collect, [])
    .option('--attachable', 'enable manual container attachment')
    .option('--internal', 'restrict external access to the network')
    .option('--ingress', 'create a swarm routing-mesh network')
    .option('--ipv6', 'enable IPv6 networking (not supported)')
    .option('-o, --opt <key=value>', 'driver options (repeatable)', collect, [])
    .option('--label <label>', 'network labels (repeatable)', collect, [])
    .action(
      daemonAction(async (c, name: string, o: CreateFlags) => {
        const spec = networkSpecFromFlags(name, o);
        const created = await c.control.createNetwork({ Spec: spec });
        process.stdout.write(`${created.Network?.ID ?? ''}\n`);
      }),
    );

  const headers: Record<string, string> = {
    ID: 'NETWORK ID',
    Name: 'NAME',
    Driver: 'DRIVER',
    Scope: 'SCOPE',
    CreatedAt: 'CREATED AT',
    IPv6: 'IPV6',
    Internal: 'INTERNAL',
    Labels: 'LABELS',
  };
  cmd
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-q, --quiet', 'only display network IDs')
    .option('-f, --filter <key=value>', 'filter output (driver, id, label, name, scope, type)', collect, [])
    .option('--format <format>', "format output: 'table', 'json', 'table TEMPLATE' or a Go template")
    .option('--no-trunc', 'do not truncate the output')
    .action(
      daemonAction(async (c, o: { quiet?: boolean; filter: string[]; format?: string; trunc: boolean }) => {
        const f = parseFilters(o.filter, ['driver', 'id', 'label', 'name', 'scope', 'type']);
        checkFormat(o.format);
        const rows = (await listAll(c))
          .filter(
            (n) =>
              matchesAny(f.get('id'), (v) => (n.ID ?? '').startsWith(v)) &&
              matchesAny(f.get('name'), (v) => (n.Spec?.Name ?? '').includes(v)) &&
              matchesAny(f.get('driver'), (v) => (n.DriverState?.Name || 'overlay') === v) &&
              matchesAny(f.get('scope'), (v) => v === 'swarm') &&
              matchesAny(f.get('type'), (v) => v === 'custom') &&
              matchLabels(n.Spec?.Labels, f.get('label') ?? []),
          )
          .sort((a, b) => (a.Spec?.Name ?? '').localeCompare(b.Spec?.Name ?? ''))
          .map((n) => ({
            ID: o.trunc ? (n.ID ?? '').slice(0, 12) : (n.ID ?? ''),
            Name: n.Spec?.Name ?? '',
            Driver: n.DriverState?.Name || n.Spec?.DriverConfiguration?.Name || 'overlay',
            Scope: 'swarm',
            CreatedAt: n.CreatedAt ?? '',
            IPv6: String(n.Spec?.IPv6Enabled === true),
            Internal: String(n.Spec?.Internal === true),
            Labels: Object.entries(n.Spec?.Labels ?? {})
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          }));
        process.stdout.write(
          formatList(rows, o.format, {
            defaultTable: '{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
            headers,
            quiet: o.quiet === true,
          }),
        );
      }),
    );

  withRoots(
    cmd
      .command('inspect')
      .description('Display detailed information on one or more networks')
      .argument('<network...>')
      .option('-f, --format <format>', "format output: 'json' or a Go template"),
  ).action(
    daemonAction(async (c, refs: string[], o: GlobalOpts & { format?: string }) => {
      checkFormat(o.format);
      const all = await listAll(c);
      const found: Network[] = [];
      let failed: unknown;
      for (const ref of refs) {
        try {
          found.push(find(all, ref));
        } catch (err) {
          failed = err;
          process.stderr.write(failureLine(err) + '\n');
        }
      }
      const { nodes, tasks } = found.length > 0 ? await placement(c) : { nodes: [], tasks: [] };
      // Containers: the local node's only, as Docker's (the node of the daemon we talk to)
      const self = nodes.length > 0 ? await localNode(c) : '';
      const ids = await plainContainerIds(o, tasks, self);
      if (found.length > 0 || failed === undefined)
        process.stdout.write(
          formatInspect(
            found.map((n) =>
              networkResource(n, networkPeers(n, nodes, tasks), networkContainers(n, tasks, self, ids, nodes)),
            ),
            o.format,
          ),
        );
      if (failed !== undefined) process.exitCode = EXIT_CODE_OF_KIND[errorKind(failed)];
    }),
  );

  cmd
    .command('rm')
    .alias('remove')
    .description('Remove one or more networks (refused while services or tasks use them)')
    .argument('<network...>')
    .action(
      daemonAction(async (c, refs: string[]) => {
        const all = await listAll(c);
        let failed: unknown;
        for (const ref of refs) {
          try {
            await c.control.removeNetwork({ NetworkID: find(all, ref).ID ?? ref });
            process.stdout.write(`${ref}\n`);
          } catch (err) {
            failed = err;
            process.stderr.write(failureLine(err) + '\n');
          }
        }
        if (failed !== undefined) process.exitCode = EXIT_CODE_OF_KIND[errorKind(failed)];
      }),
    );

  cmd
    .command('prune')
    .description('Remove all networks no service or task uses (never the ingress network)')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(
      daemonAction(async (c, o: { force?: boolean }) => {
        if (o.force !== true) {
          const ok = await confirm(
            'WARNING! This will remove all custom networks not used by at least one container.\n' +
              'Are you sure you want to continue?',
          );
          if (!ok) return;
        }
        const deleted: string[] = [];
        for (const n of await listAll(c)) {
          if (n.Spec?.Ingress === true) continue;
          try {
            await c.control.removeNetwork({ NetworkID: n.ID ?? '' });
            deleted.push(n.Spec?.Name ?? n.ID ?? '');
          } catch (err) {
            if (!hasCode(err, 'MANAGER_NETWORK_IN_USE') && !hasCode(err, 'MANAGER_NETWORK_NOT_FOUND')) throw err;
          }
        }
        if (deleted.length > 0) process.stdout.write(`Deleted Networks:\n${deleted.join('\n')}\n`);
      }),
    );
}

/** `--network-rm` values with the IDs of the networks they name (stored Targets are IDs). */
export async function withNetworkIds(c: DaemonClient, refs: readonly string[]): Promise<string[]> {
  if (refs.length === 0) return [];
  const all = await listAll(c);
  return refs.flatMap((r) => {
    const n = all.find((x) => x.ID === r || x.Spec?.Name === r) ?? all.find((x) => (x.ID ?? '').startsWith(r));
    return n?.ID ? [r, n.ID] : [r];
  });
}
