/**
 * `shoal service create|ls|ps|inspect|scale|update|rm|rollback`: services through the local
 * daemon's Control service, with docker's flags, columns and messages. Flag values are checked
 * before any write, so bad input changes nothing. `service logs` is in logs.ts.
 */
import type { Command } from 'commander';
import { inspectJson, type ConfigReference, type SecretReference, type Service, type ServiceSpec } from '@shoal/api';
import { InvalidArgumentError, ShoalError, errorKind } from '@shoal/common';
import { EXIT_CODE_OF_KIND, daemonAction, failureLine } from '../daemon/action.js';
import type { DaemonClient } from '../daemon/client.js';
import { checkFormat, formatInspect, formatList, matchLabels, matchesAny, parseFilters } from '../format/index.js';
import { createFlags, updateFlags, withListDefaults, type ServiceFlags } from './flags.js';
import { registerServiceLogs } from './logs.js';
import { prettyService } from './pretty.js';
import { waitOnService } from './progress.js';
import { registryAuthFor } from './registry-auth.js';
import { applyServiceUpdate, buildServiceSpec } from './spec.js';
import {
  SERVICE_FILTERS,
  SERVICE_LS_HEADERS,
  SERVICE_LS_TABLE,
  SERVICE_PS_HEADERS,
  SERVICE_PS_TABLE,
  TASK_FILTERS,
  serviceRow,
  statusFromTasks,
  taskRows,
} from './view.js';
import { withNetworkIds } from '../network/command.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** A secret or config a service names that the cluster does not have. */
export class ReferenceNotFoundError extends ShoalError {
  constructor(kind: 'secret' | 'config', name: string) {
    super('CLI_REFERENCE_NOT_FOUND', `${kind} not found: ${name}`, { kind: 'not-found' });
  }
}

/** A rollback asked of a service that has no previous spec. */
export class NoPreviousSpecError extends ShoalError {
  constructor(name: string) {
    super('CLI_NO_PREVIOUS_SPEC', `service ${name} does not have a previous spec to roll back to`, {
      kind: 'failed-precondition',
    });
  }
}

async function getService(c: DaemonClient, ref: string, insertDefaults = false): Promise<Service> {
  const res = await c.control.getService({ ServiceID: ref, InsertDefaults: insertDefaults });
  if (!res.Service)
    throw new ShoalError('CLI_NO_SERVICE', `the daemon returned no service for ${ref}`, { kind: 'internal' });
  return res.Service;
}

/** Fills SecretID / ConfigID of references that only have names, from the daemon's lists. */
export async function resolveRefs(c: DaemonClient, spec: ServiceSpec): Promise<void> {
  const cs = spec.TaskTemplate?.ContainerSpec;
  const secrets: SecretReference[] = cs?.Secrets ?? [];
  const configs: ConfigReference[] = cs?.Configs ?? [];
  if (secrets.some((s) => !s.SecretID)) {
    const all = (await c.control.listSecrets({})).Secrets ?? [];
    for (const s of secrets) {
      if (s.SecretID) continue;
      const found = all.find((x) => x.Spec?.Name === s.SecretName) ?? all.find((x) => x.ID === s.SecretName);
      if (!found) throw new ReferenceNotFoundError('secret', s.SecretName ?? '');
      s.SecretID = found.ID ?? '';
      s.SecretName = found.Spec?.Name ?? s.SecretName ?? '';
    }
  }
  if (configs.some((x) => !x.ConfigID)) {
    const all = (await c.control.listConfigs({})).Configs ?? [];
    for (const s of configs) {
      if (s.ConfigID) continue;
      const found = all.find((x) => x.Spec?.Name === s.ConfigName) ?? all.find((x) => x.ID === s.ConfigName);
      if (!found) throw new ReferenceNotFoundError('config', s.ConfigName ?? '');
      s.ConfigID = found.ID ?? '';
      s.ConfigName = found.Spec?.Name ?? s.ConfigName ?? '';
    }
  }
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

function printWarnings(warnings: readonly string[] | undefined): void {
  for (const w of warnings ?? []) process.stderr.write(`${w}\n`);
}

async function converge(c: DaemonClient, id: string, o: { detach?: boolean; quiet?: boolean }): Promise<void> {
  if (o.detach) return;
  await waitOnService(c, id, { quiet: o.quiet === true, out: process.stdout });
}

/** `svc=3` of `service scale`. */
export function parseScaleArg(arg: string): { name: string; replicas: number } {
  const eq = arg.indexOf('=');
  const name = eq < 0 ? '' : arg.slice(0, eq);
  const n = eq < 0 ? '' : arg.slice(eq + 1);
  if (name === '' || n === '')
    throw new InvalidArgumentError(`invalid scale specifier '${arg}': expected SERVICE=REPLICAS`);
  if (!/^\d+$/.test(n) || !Number.isSafeInteger(Number(n)))
    throw new InvalidArgumentError(`invalid replicas value ${n}: expected a non-negative integer`);
  return { name, replicas: Number(n) };
}

export function registerService(program: Command): void {
  const service = program.command('service').description('Manage swarm services').enablePositionalOptions();

  createFlags(
    service
      .command('create')
      .description('Create a new service')
      .argument('<image>', 'image reference')
      .argument('[command...]', 'command and arguments')
      .passThroughOptions(),
  ).action(
    daemonAction(async (c, image: string, args: string[], raw: Partial<ServiceFlags>) => {
      const o = withListDefaults(raw);
      const spec = buildServiceSpec(image, args, o);
      const auth = o.withRegistryAuth ? registryAuthFor(image) : undefined;
      await resolveRefs(c, spec);
      const res = await c.control.createService({ Spec: spec, ...(auth ? { EncodedRegistryAuth: auth } : {}) });
      printWarnings(res.Warnings);
      const id = res.Service?.ID ?? '';
      process.stdout.write(`${id}\n`);
      await converge(c, id, o);
    }),
  );

  service
    .command('ls')
    .alias('list')
    .description('List services')
    .option('-q, --quiet', 'only display IDs')
    .option('-f, --filter <key=value>', `filter output (${SERVICE_FILTERS.join(', ')})`, collect, [])
    .option('--format <format>', "format output: 'table', 'json', 'table TEMPLATE' or a Go template")
    .action(
      daemonAction(async (c, o: { quiet?: boolean; filter: string[]; format?: string }) => {
        const f = parseFilters(o.filter, SERVICE_FILTERS);
        checkFormat(o.format);
        for (const m of f.get('mode') ?? [])
          if (!['replicated', 'global', 'replicated-job', 'global-job'].includes(m))
            throw new InvalidArgumentError(
              `invalid filter 'mode=${m}': expected replicated, global, replicated-job or global-job`,
            );
        const all = (await c.control.listServices({ Status: true })).Services ?? [];
        const modeOf = (s: Service): string =>
          s.Spec?.Mode?.Global
            ? 'global'
            : s.Spec?.Mode?.ReplicatedJob
              ? 'replicated-job'
              : s.Spec?.Mode?.GlobalJob
                ? 'global-job'
                : 'replicated';
        const services = all
          .filter(
            (s) =>
              matchesAny(f.get('id'), (v) => (s.ID ?? '').startsWith(v)) &&
              matchesAny(f.get('name'), (v) => (s.Spec?.Name ?? '').startsWith(v)) &&
              matchesAny(f.get('mode'), (v) => v === modeOf(s)) &&
              matchLabels(s.Spec?.Labels, f.get('label') ?? []),
          )
          .sort((a, b) => (a.Spec?.Name ?? '').localeCompare(b.Spec?.Name ?? ''));
        if (!o.quiet && services.some((s) => !s.ServiceStatus)) {
          // an older daemon without ServiceStatus: counted here from the tasks, as docker did
          const tasks =
            (await c.control.listTasks({ Filters: { ServiceIDs: services.map((s) => s.ID ?? '') } })).Tasks ?? [];
          const nodes = (await c.control.listNodes({})).Nodes ?? [];
          const active = nodes.filter((n) => n.Status?.State === 'ready' && n.Spec?.Availability === 'active').length;
          for (const s of services) s.ServiceStatus ??= statusFromTasks(s, tasks, active);
        }
        process.stdout.write(
          formatList(
            services.map((s) => (o.quiet ? { ID: s.ID ?? '' } : serviceRow(s))),
            o.format,
            { defaultTable: SERVICE_LS_TABLE, headers: SERVICE_LS_HEADERS, quiet: o.quiet === true },
          ),
        );
      }),
    );

  service
    .command('ps')
    .description('List the tasks of one or more services')
    .argument('<service...>')
    .option('-q, --quiet', 'only display task IDs')
    .option('-f, --filter <key=value>', `filter output (${TASK_FILTERS.join(', ')})`, collect, [])
    .option('--format <format>', 'pretty-print tasks using a Go template')
    .option('--no-trunc', 'do not truncate output')
    .option('--no-resolve', 'do not map IDs to names')
    .action(
      daemonAction(
        async (
          c,
          refs: string[],
          o: { quiet?: boolean; filter: string[]; format?: string; trunc: boolean; resolve: boolean },
        ) => {
          const f = parseFilters(o.filter, TASK_FILTERS);
          checkFormat(o.format);
          const services = await Promise.all(refs.map((r) => getService(c, r)));
          const names = new Map(services.map((s) => [s.ID ?? '', s.Spec?.Name ?? '']));
          const nodes = (await c.control.listNodes({})).Nodes ?? [];
          const hostnames = new Map(
            o.resolve ? nodes.map((n) => [n.ID ?? '', n.Description?.Hostname ?? n.ID ?? '']) : [],
          );
          const nodeFilter = f.get('node');
          const nodeIds = nodeFilter?.flatMap((v) =>
            nodes
              .filter((n) => n.ID === v || (n.ID ?? '').startsWith(v) || n.Description?.Hostname === v)
              .map((n) => n.ID ?? ''),
          );
          const res = await c.control.listTasks({
            Filters: {
              ServiceIDs: [...names.keys()],
              ...(f.get('desired-state') ? { DesiredStates: [...(f.get('desired-state') ?? [])] } : {}),
              ...(nodeIds ? { NodeIDs: nodeIds } : {}),
            },
          });
          const tasks = (res.Tasks ?? []).filter(
            (t) =>
              names.has(t.ServiceID ?? '') &&
              matchesAny(f.get('id'), (v) => (t.ID ?? '').startsWith(v)) &&
              matchesAny(f.get('name'), (v) => (t.Name ?? '').startsWith(v)) &&
              matchesAny(f.get('desired-state'), (v) => v === t.DesiredState) &&
              (nodeIds === undefined || nodeIds.includes(t.NodeID ?? '')),
          );
          const rows = taskRows(tasks, names, hostnames, { noTrunc: !o.trunc, now: Date.now() });
          process.stdout.write(
            formatList(rows, o.format, {
              defaultTable: SERVICE_PS_TABLE,
              headers: SERVICE_PS_HEADERS,
              quiet: o.quiet === true,
            }),
          );
        },
      ),
    );

  service
    .command('inspect')
    .description('Display detailed information on one or more services')
    .argument('<service...>')
    .option('-f, --format <format>', "format output: 'json' or a Go template")
    .option('--pretty', 'print the information in a human friendly format')
    .action(
      daemonAction(async (c, refs: string[], o: { format?: string; pretty?: boolean }) => {
        if (o.pretty && o.format !== undefined)
          throw new InvalidArgumentError('--format is incompatible with --pretty');
        checkFormat(o.format);
        const found: Service[] = [];
        let failed: unknown;
        for (const ref of refs) {
          try {
            found.push(await getService(c, ref, true));
          } catch (err) {
            failed = err;
            process.stderr.write(failureLine(err) + '\n');
          }
        }
        if (o.pretty) process.stdout.write(found.map(prettyService).join('\n\n'));
        else if (found.length > 0 || failed === undefined)
          process.stdout.write(
            formatInspect(
              found.map((s) => inspectJson('service', s)),
              o.format,
            ),
          );
        if (failed !== undefined) process.exitCode = EXIT_CODE_OF_KIND[errorKind(failed)];
      }),
    );

  service
    .command('scale')
    .description('Scale one or multiple replicated services')
    .argument('<service=replicas...>')
    .option('-d, --detach', 'exit immediately instead of waiting for the services to converge')
    .action(
      daemonAction(async (c, args: string[], o: { detach?: boolean }) => {
        const wanted = args.map(parseScaleArg);
        const scaled: string[] = [];
        await eachArg(
          wanted.map((w) => w.name),
          async (name) => {
            const n = wanted.find((w) => w.name === name)?.replicas ?? 0;
            const s = await getService(c, name);
            const spec = structuredClone(s.Spec ?? {});
            const mode = spec.Mode ?? {};
            if (mode.Replicated) mode.Replicated.Replicas = n;
            else if (mode.ReplicatedJob) mode.ReplicatedJob.TotalCompletions = n;
            else
              throw new InvalidArgumentError(
                `scale can only be used with replicated or replicated-job mode (${name} is ${mode.Global ? 'global' : 'a global job'})`,
              );
            await c.control.updateService({
              ServiceID: s.ID ?? name,
              ServiceVersion: s.Version,
              Spec: spec,
              RegistryAuthFrom: 'spec',
            });
            process.stdout.write(`${name} scaled to ${n}\n`);
            scaled.push(s.ID ?? name);
          },
        );
        for (const id of scaled) await converge(c, id, o);
      }),
    );

  updateFlags(service.command('update').description('Update a service').argument('<service>')).action(
    daemonAction(async (c, ref: string, raw: Partial<ServiceFlags>) => {
      const o = withListDefaults(raw);
      const s = await getService(c, ref);
      o.networkRm = await withNetworkIds(c, o.networkRm);
      const spec = applyServiceUpdate(s.Spec ?? {}, o);
      const auth = o.withRegistryAuth ? registryAuthFor(spec.TaskTemplate?.ContainerSpec?.Image ?? '') : undefined;
      await resolveRefs(c, spec);
      const res = await c.control.updateService({
        ServiceID: s.ID ?? ref,
        ServiceVersion: s.Version,
        Spec: spec,
        ...(auth ? { EncodedRegistryAuth: auth } : { RegistryAuthFrom: 'spec' }),
      });
      printWarnings(res.Warnings);
      process.stdout.write(`${ref}\n`);
      await converge(c, s.ID ?? ref, o);
    }),
  );

  service
    .command('rollback')
    .description("Revert changes to a service's configuration")
    .argument('<service>')
    .option('-d, --detach', 'exit immediately instead of waiting for the service to converge')
    .option('-q, --quiet', 'suppress progress output')
    .action(
      daemonAction(async (c, ref: string, o: { detach?: boolean; quiet?: boolean }) => {
        const s = await getService(c, ref);
        if (!s.PreviousSpec) throw new NoPreviousSpecError(ref);
        const res = await c.control.updateService({
          ServiceID: s.ID ?? ref,
          ServiceVersion: s.Version,
          Spec: s.Spec,
          Rollback: 'previous',
          RegistryAuthFrom: 'previous-spec',
        });
        printWarnings(res.Warnings);
        process.stdout.write(`${ref}\nrollback: manually requested rollback\n`);
        await converge(c, s.ID ?? ref, o);
      }),
    );

  service
    .command('rm')
    .alias('remove')
    .description('Remove one or more services')
    .argument('<service...>')
    .action(
      daemonAction(async (c, refs: string[]) =>
        eachArg(refs, async (ref) => {
          const s = await getService(c, ref);
          await c.control.removeService({ ServiceID: s.ID ?? ref });
          process.stdout.write(`${ref}\n`);
        }),
      ),
    );

  registerServiceLogs(service);
}
