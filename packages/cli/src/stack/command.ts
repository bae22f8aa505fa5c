/**
 * `shoal stack deploy|config|ls|ps|services|rm`: Compose stacks as Docker's `docker stack`, with
 * Docker's columns, lines and exit codes. A stack is the set of objects carrying the
 * `com.docker.stack.namespace=<stack>` label.
 */
import type { Command } from 'commander';
import type { Service } from '@shoal/api';
import { LABEL_NAMESPACE, loadCompose, validateStackName } from '@shoal/compose';
import { InvalidArgumentError, ShoalError } from '@shoal/common';
import { daemonAction } from '../daemon/action.js';
import type { DaemonClient } from '../daemon/client.js';
import { checkFormat, formatList, matchesAny, matchLabels, parseFilters } from '../format/index.js';
import {
  SERVICE_FILTERS,
  SERVICE_LS_HEADERS,
  SERVICE_LS_TABLE,
  SERVICE_PS_HEADERS,
  SERVICE_PS_TABLE,
  TASK_FILTERS,
  modeName,
  serviceRow,
  taskRows,
} from '../service/view.js';
import { configYaml } from './config-yaml.js';
import { deployStack, stackServices, type DeployFlags } from './deploy.js';
import { composeFiles, loadOrReport, printWarnings } from './load.js';
import { removeStack } from './remove.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** `--detach`, `--detach=true|false`. */
function parseBool(v: string | undefined): boolean {
  if (v === undefined || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new InvalidArgumentError(`invalid boolean value ${JSON.stringify(v)}: use true or false`);
}

/** `stack ps` with nothing to show: Docker's message and exit status 1. */
export class NothingInStackError extends ShoalError {
  constructor(ns: string) {
    super('CLI_STACK_EMPTY', `nothing found in stack: ${ns}`, { kind: 'internal' });
  }
}

export const STACK_LS_TABLE = '{{.Name}}\t{{.Services}}';
const STACK_LS_HEADERS = { Name: 'NAME', Services: 'SERVICES' };

/** Docker's natural order of stack names (digits compared as numbers). */
const natural = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

export function stackRows(services: readonly Service[]): { Name: string; Services: number }[] {
  const counts = new Map<string, number>();
  for (const s of services) {
    const ns = s.Spec?.Labels?.[LABEL_NAMESPACE];
    if (ns !== undefined) counts.set(ns, (counts.get(ns) ?? 0) + 1);
  }
  return [...counts].sort(([a], [b]) => natural(a, b)).map(([Name, Services]) => ({ Name, Services }));
}

async function stackPs(
  c: DaemonClient,
  ns: string,
  o: { quiet?: boolean; filter: string[]; format?: string; trunc: boolean; resolve: boolean },
): Promise<void> {
  const f = parseFilters(o.filter, TASK_FILTERS);
  checkFormat(o.format);
  const services = await stackServices(c, ns);
  const names = new Map(services.map((s) => [s.ID ?? '', s.Spec?.Name ?? '']));
  const nodes = (await c.control.listNodes({})).Nodes ?? [];
  const hostnames = new Map(o.resolve ? nodes.map((n) => [n.ID ?? '', n.Description?.Hostname ?? n.ID ?? '']) : []);
  const nodeIds = f
    .get('node')
    ?.flatMap((v) =>
      nodes
        .filter((n) => n.ID === v || (n.ID ?? '').startsWith(v) || n.Description?.Hostname === v)
        .map((n) => n.ID ?? ''),
    );
  const tasks =
    names.size === 0
      ? []
      : ((await c.control.listTasks({ Filters: { ServiceIDs: [...names.keys()] } })).Tasks ?? []).filter(
          (t) =>
            names.has(t.ServiceID ?? '') &&
            matchesAny(f.get('id'), (v) => (t.ID ?? '').startsWith(v)) &&
            matchesAny(f.get('name'), (v) => (t.Name ?? '').startsWith(v)) &&
            matchesAny(f.get('desired-state'), (v) => v === t.DesiredState) &&
            (nodeIds === undefined || nodeIds.includes(t.NodeID ?? '')),
        );
  if (tasks.length === 0) throw new NothingInStackError(ns);
  const rows = taskRows(tasks, names, hostnames, { noTrunc: !o.trunc, now: Date.now() });
  process.stdout.write(
    formatList(rows, o.format, {
      defaultTable: SERVICE_PS_TABLE,
      headers: SERVICE_PS_HEADERS,
      quiet: o.quiet === true,
    }),
  );
}

async function stackServicesCmd(
  c: DaemonClient,
  ns: string,
  o: { quiet?: boolean; filter: string[]; format?: string },
): Promise<void> {
  const f = parseFilters(o.filter, SERVICE_FILTERS);
  checkFormat(o.format);
  const services = (await stackServices(c, ns, true)).filter(
    (s) =>
      matchesAny(f.get('id'), (v) => (s.ID ?? '').startsWith(v)) &&
      matchesAny(f.get('name'), (v) => (s.Spec?.Name ?? '').startsWith(v)) &&
      matchesAny(f.get('mode'), (v) => v === modeName(s)) &&
      matchLabels(s.Spec?.Labels, f.get('label') ?? []),
  );
  if (services.length === 0) {
    process.stderr.write(`Nothing found in stack: ${ns}\n`);
    return;
  }
  services.sort((a, b) => natural(a.Spec?.Name ?? '', b.Spec?.Name ?? ''));
  process.stdout.write(
    formatList(
      services.map((s) => (o.quiet ? { ID: s.ID ?? '' } : serviceRow(s))),
      o.format,
      { defaultTable: SERVICE_LS_TABLE, headers: SERVICE_LS_HEADERS, quiet: o.quiet === true },
    ),
  );
}

export function registerStack(program: Command): void {
  const stack = program.command('stack').description('Manage Swarm stacks');

  stack
    .command('deploy')
    .alias('up')
    .description('Deploy a new stack or update an existing stack')
    .argument('<stack>')
    .option('-c, --compose-file <file>', 'path to a Compose file, or "-" to read from stdin (repeatable)', collect, [])
    .option('--prune', 'prune services that are no longer referenced')
    .option('--dry-run', 'print what would be created, updated and removed, and change nothing')
    .option('--resolve-image <mode>', 'query the registry to resolve image digest: always, changed or never', 'always')
    .option('--with-registry-auth', 'send registry authentication details to swarm agents')
    .option(
      '-d, --detach [bool]',
      'exit immediately instead of waiting for the stack services to converge',
      parseBool,
      true,
    )
    .option('-q, --quiet', 'suppress progress output')
    .option('--compat', 'Compose-spec extras Docker lacks: .env, ${VAR:+alt}, nested defaults')
    .action(
      daemonAction(async (c, ns: string, o: DeployFlags) => {
        validateStackName(ns);
        await deployStack(c, ns, o);
      }),
    );

  stack
    .command('config')
    .description('Outputs the final config file, after doing merges and interpolations')
    .option('-c, --compose-file <file>', 'path to a Compose file, or "-" to read from stdin (repeatable)', collect, [])
    .option('--compat', 'Compose-spec extras Docker lacks: .env, ${VAR:+alt}, nested defaults')
    .option('--skip-interpolation', 'skip interpolation and output the merged config as written')
    .action((o: { composeFile: string[]; compat?: boolean; skipInterpolation?: boolean }) => {
      const loaded = loadOrReport(() =>
        loadCompose({
          files: composeFiles(o.composeFile),
          ...(o.compat ? { compat: true } : {}),
          ...(o.skipInterpolation ? { skipInterpolation: true } : {}),
          // as Docker's `stack config`: images are only checked by deploy
          checkImages: false,
        }),
      );
      if (loaded === undefined) return;
      // Docker's `stack config` prints the loader's warnings, not deploy's "Ignoring …" ones
      printWarnings(loaded.warnings.filter((w) => !w.message.startsWith('Ignoring ')));
      process.stdout.write(configYaml(loaded.config));
    });

  stack
    .command('ls')
    .alias('list')
    .description('List stacks')
    .option('--format <format>', "format output: 'table', 'json', 'table TEMPLATE' or a Go template")
    .action(
      daemonAction(async (c, o: { format?: string }) => {
        checkFormat(o.format);
        const all = (await c.control.listServices({ Filters: { Labels: { [LABEL_NAMESPACE]: '' } } })).Services ?? [];
        process.stdout.write(
          formatList(stackRows(all), o.format, { defaultTable: STACK_LS_TABLE, headers: STACK_LS_HEADERS }),
        );
      }),
    );

  stack
    .command('ps')
    .description('List the tasks in the stack')
    .argument('<stack>')
    .option('-q, --quiet', 'only display task IDs')
    .option('-f, --filter <key=value>', `filter output (${TASK_FILTERS.join(', ')})`, collect, [])
    .option('--format <format>', 'pretty-print tasks using a Go template')
    .option('--no-trunc', 'do not truncate output')
    .option('--no-resolve', 'do not map IDs to names')
    .action(daemonAction(stackPs));

  stack
    .command('services')
    .description('List the services in the stack')
    .argument('<stack>')
    .option('-q, --quiet', 'only display IDs')
    .option('-f, --filter <key=value>', `filter output (${SERVICE_FILTERS.join(', ')})`, collect, [])
    .option('--format <format>', "format output: 'table', 'json', 'table TEMPLATE' or a Go template")
    .action(daemonAction(stackServicesCmd));

  stack
    .command('rm')
    .aliases(['remove', 'down'])
    .description('Remove one or more stacks')
    .argument('<stack...>')
    .action(
      daemonAction(async (c, names: string[]) => {
        let ok = true;
        for (const ns of names) ok = (await removeStack(c, ns)) && ok;
        if (!ok) process.exitCode = 1;
      }),
    );
}
