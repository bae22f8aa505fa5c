/**
 * `shoal node ls|inspect|promote|demote|update|rm|ps`: the cluster's nodes through the local
 * daemon's Control service, with docker's columns, filters and messages. Flag values are
 * checked before the first call, so bad input changes nothing.
 */
import type { Command } from 'commander';
import { inspectJson, type Node, type NodeSpec } from '@shoal/api';
import { InvalidArgumentError, ShoalError, errorKind } from '@shoal/common';
import { EXIT_CODE_OF_KIND, daemonAction, failureLine } from '../daemon/action.js';
import type { DaemonClient } from '../daemon/client.js';
import { parseAvailability, parseRole } from '../daemon/addr.js';
import { checkFormat, formatInspect, formatList, parseFilters } from '../format/index.js';
import {
  NODE_FILTERS,
  NODE_LS_HEADERS,
  NODE_LS_TABLE,
  NODE_PS_HEADERS,
  NODE_PS_TABLE,
  nodeMatches,
  nodeRole,
  nodeRow,
  sortNodes,
} from './node-view.js';
import { taskRows } from '../service/view.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** A CLI-side refusal found from the daemon's answers (a label to remove that is not there). */
export class NodeUpdateError extends ShoalError {
  constructor(message: string) {
    super('CLI_NODE_UPDATE', message, { kind: 'invalid-argument' });
  }
}

/** `self` means the local node, as in docker. */
async function nodeRef(c: DaemonClient, ref: string): Promise<string> {
  if (ref !== 'self') return ref;
  return (await c.swarm.info({})).NodeID ?? ref;
}

async function getNode(c: DaemonClient, ref: string): Promise<Node> {
  const res = await c.control.getNode({ NodeID: await nodeRef(c, ref) });
  if (!res.Node) throw new ShoalError('CLI_NO_NODE', `the daemon returned no node for ${ref}`, { kind: 'internal' });
  return res.Node;
}

/** Runs `fn` for every argument as docker does: a failure is printed and the others still run. */
async function eachArg(args: readonly string[], fn: (arg: string) => Promise<void>): Promise<void> {
  let failed: unknown;
  for (const a of args) {
    try {
      await fn(a);
    } catch (err) {
      process.stderr.write(failureLine(err) + '\n');
      failed = err;
    }
  }
  if (failed !== undefined) process.exitCode = EXIT_CODE_OF_KIND[errorKind(failed)];
}

async function setRole(c: DaemonClient, ref: string, role: 'manager' | 'worker'): Promise<void> {
  const n = await getNode(c, ref);
  if (nodeRole(n) === role) {
    process.stdout.write(`Node ${ref} is already a ${role}.\n`);
    return;
  }
  await c.control.updateNode({ NodeID: n.ID ?? ref, NodeVersion: n.Version, Spec: { ...n.Spec, Role: role } });
  process.stdout.write(
    role === 'manager' ? `Node ${ref} promoted to a manager in the swarm.\n` : `Manager ${ref} demoted in the swarm.\n`,
  );
}

/** `--label-add k=v|k` and `--label-rm k` values, checked. */
export function parseLabelAdd(v: string): [string, string] {
  const eq = v.indexOf('=');
  const key = eq < 0 ? v : v.slice(0, eq);
  if (key.trim() === '') throw new InvalidArgumentError(`invalid --label-add ${JSON.stringify(v)}: no key`);
  return [key, eq < 0 ? '' : v.slice(eq + 1)];
}

interface NodeUpdateFlags {
  availability?: string;
  role?: string;
  labelAdd: string[];
  labelRm: string[];
}

/** The NodeSpec change of `node update`, from checked flags. */
export function nodeSpecChange(o: NodeUpdateFlags): (spec: NodeSpec) => NodeSpec {
  const availability = o.availability === undefined ? undefined : parseAvailability(o.availability);
  const role = o.role === undefined ? undefined : parseRole(o.role);
  const add = o.labelAdd.map(parseLabelAdd);
  for (const k of o.labelRm)
    if (k.trim() === '' || k.includes('='))
      throw new InvalidArgumentError(`invalid --label-rm ${JSON.stringify(k)}: expected a key`);
  if (availability === undefined && role === undefined && add.length === 0 && o.labelRm.length === 0)
    throw new InvalidArgumentError('nothing to update: give --availability, --role, --label-add or --label-rm');
  return (spec) => {
    const labels = { ...spec.Labels };
    for (const k of o.labelRm) {
      if (!Object.hasOwn(labels, k)) throw new NodeUpdateError(`key ${k} doesn't exist in node's labels`);
      delete labels[k];
    }
    for (const [k, v] of add) labels[k] = v;
    return {
      ...spec,
      Labels: labels,
      ...(availability === undefined ? {} : { Availability: availability }),
      ...(role === undefined ? {} : { Role: role }),
    };
  };
}

/** A human-readable inspect (`--pretty`). */
function pretty(n: Node): string {
  const lines = [
    `ID:\t\t\t${n.ID ?? ''}`,
    ...(n.Spec?.Name ? [`Name:\t\t\t${n.Spec.Name}`] : []),
    ...(Object.keys(n.Spec?.Labels ?? {}).length > 0
      ? ['Labels:', ...Object.entries(n.Spec?.Labels ?? {}).map(([k, v]) => ` - ${k}${v ? `=${v}` : ''}`)]
      : []),
    `Hostname:\t\t${n.Description?.Hostname ?? ''}`,
    `Joined at:\t\t${n.CreatedAt ?? ''}`,
    'Status:',
    ` State:\t\t\t${n.Status?.State ? n.Status.State.charAt(0).toUpperCase() + n.Status.State.slice(1) : ''}`,
    ` Availability:\t\t${n.Spec?.Availability ? n.Spec.Availability.charAt(0).toUpperCase() + n.Spec.Availability.slice(1) : ''}`,
    ` Address:\t\t${n.Status?.Addr ?? ''}`,
    ...(n.ManagerStatus
      ? [
          'Manager Status:',
          ` Address:\t\t${n.ManagerStatus.Addr ?? ''}`,
          ` Raft Status:\t\t${n.ManagerStatus.Reachability ? n.ManagerStatus.Reachability.charAt(0).toUpperCase() + n.ManagerStatus.Reachability.slice(1) : ''}`,
          ` Leader:\t\t${n.ManagerStatus.Leader ? 'Yes' : 'No'}`,
        ]
      : []),
    'Platform:',
    ` Operating System:\t${n.Description?.Platform?.OS ?? ''}`,
    ` Architecture:\t\t${n.Description?.Platform?.Architecture ?? ''}`,
    'Engine:',
    ` Engine Version:\t${n.Description?.Engine?.EngineVersion ?? ''}`,
  ];
  return lines.join('\n') + '\n';
}

export function registerNode(program: Command): void {
  const node = program.command('node').description('Manage the nodes of the swarm');

  node
    .command('ls')
    .alias('list')
    .description('List nodes in the swarm')
    .option('-q, --quiet', 'only display IDs')
    .option('-f, --filter <key=value>', `filter output (${NODE_FILTERS.join(', ')})`, collect, [])
    .option('--format <format>', "format output: 'table', 'json', 'table TEMPLATE' or a Go template")
    .option('--no-trunc', 'do not truncate output')
    .action(
      daemonAction(async (c, o: { quiet?: boolean; filter: string[]; format?: string }) => {
        const filters = parseFilters(o.filter, NODE_FILTERS);
        checkFormat(o.format);
        const roles = filters.get('role')?.map((r) => r.toLowerCase());
        for (const r of roles ?? []) parseRole(r);
        const res = await c.control.listNodes({ Filters: roles ? { Roles: roles } : {} });
        const self = (await c.swarm.info({})).NodeID ?? '';
        const rows = sortNodes((res.Nodes ?? []).filter((n) => nodeMatches(n, filters))).map((n) => nodeRow(n, self));
        process.stdout.write(
          formatList(rows, o.format, {
            defaultTable: NODE_LS_TABLE,
            headers: NODE_LS_HEADERS,
            quietField: 'ID',
            quiet: o.quiet === true,
          }),
        );
      }),
    );

  node
    .command('inspect')
    .description('Display detailed information on one or more nodes')
    .argument('<node...>', 'node IDs, ID prefixes or hostnames (or self)')
    .option('-f, --format <format>', "format output: 'json' or a Go template")
    .option('--pretty', 'print the information in a human friendly format')
    .action(
      daemonAction(async (c, refs: string[], o: { format?: string; pretty?: boolean }) => {
        if (o.pretty && o.format !== undefined)
          throw new InvalidArgumentError('--format is incompatible with --pretty');
        checkFormat(o.format);
        const nodes: Node[] = [];
        let failed: unknown;
        for (const ref of refs) {
          try {
            nodes.push(await getNode(c, ref));
          } catch (err) {
            failed = err;
            process.stderr.write(failureLine(err) + '\n');
          }
        }
        if (o.pretty) process.stdout.write(nodes.map(pretty).join('\n'));
        else if (nodes.length > 0 || failed === undefined)
          process.stdout.write(
            formatInspect(
              nodes.map((n) => inspectJson('node', n)),
              o.format,
            ),
          );
        if (failed !== undefined) process.exitCode = EXIT_CODE_OF_KIND[errorKind(failed)];
      }),
    );

  node
    .command('promote')
    .description('Promote one or more nodes to manager in the swarm')
    .argument('<node...>')
    .action(daemonAction(async (c, refs: string[]) => eachArg(refs, (r) => setRole(c, r, 'manager'))));

  node
    .command('demote')
    .description('Demote one or more nodes from manager in the swarm')
    .argument('<node...>')
    .action(daemonAction(async (c, refs: string[]) => eachArg(refs, (r) => setRole(c, r, 'worker'))));

  node
    .command('update')
    .description('Update a node')
    .argument('<node>')
    .option('--availability <active|pause|drain>', 'availability of the node')
    .option('--role <worker|manager>', 'role of the node')
    .option('--label-add <key=value>', 'add or update a node label (repeatable)', collect, [])
    .option('--label-rm <key>', 'remove a node label if it exists (repeatable)', collect, [])
    .action(
      daemonAction(async (c, ref: string, o: NodeUpdateFlags) => {
        const change = nodeSpecChange(o);
        const n = await getNode(c, ref);
        await c.control.updateNode({ NodeID: n.ID ?? ref, NodeVersion: n.Version, Spec: change(n.Spec ?? {}) });
        process.stdout.write(`${ref}\n`);
      }),
    );

  node
    .command('rm')
    .alias('remove')
    .description('Remove one or more nodes from the swarm')
    .argument('<node...>')
    .option('-f, --force', 'force remove a node from the swarm')
    .action(
      daemonAction(async (c, refs: string[], o: { force?: boolean }) =>
        eachArg(refs, async (ref) => {
          await c.control.removeNode({ NodeID: await nodeRef(c, ref), Force: o.force === true });
          process.stdout.write(`${ref}\n`);
        }),
      ),
    );

  node
    .command('ps')
    .description('List tasks running on one or more nodes, defaults to current node')
    .argument('[node...]')
    .option('-q, --quiet', 'only display task IDs')
    .option('-f, --filter <key=value>', 'filter output (desired-state, id, name, label)', collect, [])
    .option('--format <format>', 'pretty-print tasks using a Go template')
    .option('--no-trunc', 'do not truncate output')
    .action(
      daemonAction(
        async (c, refs: string[], o: { quiet?: boolean; filter: string[]; format?: string; trunc: boolean }) => {
          const filters = parseFilters(o.filter, ['desired-state', 'id', 'name', 'label']);
          checkFormat(o.format);
          const nodes = await Promise.all((refs.length > 0 ? refs : ['self']).map((r) => getNode(c, r)));
          const host = new Map(nodes.map((n) => [n.ID ?? '', n.Description?.Hostname ?? '']));
          const res = await c.control.listTasks({
            Filters: {
              NodeIDs: [...host.keys()],
              ...(filters.get('desired-state') ? { DesiredStates: [...(filters.get('desired-state') ?? [])] } : {}),
            },
          });
          const tasks = (res.Tasks ?? []).filter(
            (t) =>
              (filters.get('id') ?? []).every((v) => (t.ID ?? '').startsWith(v)) &&
              (filters.get('name') ?? []).every((v) => (t.Name ?? '').includes(v)),
          );
          // docker's task rows: slot names with history lines, "Running 5 seconds ago", quoted errors
          const services = tasks.length > 0 ? ((await c.control.listServices({})).Services ?? []) : [];
          const names = new Map(services.map((s) => [s.ID ?? '', s.Spec?.Name ?? '']));
          const rows = taskRows(tasks, names, host, { noTrunc: !o.trunc, now: Date.now() });
          process.stdout.write(
            formatList(rows, o.format, {
              defaultTable: NODE_PS_TABLE,
              headers: NODE_PS_HEADERS,
              quiet: o.quiet === true,
            }),
          );
        },
      ),
    );
}
