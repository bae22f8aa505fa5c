/**
 * `shoal secret` and `shoal config`: create from a file or stdin, ls, inspect and rm, through
 * the daemon's Control service, with docker's columns and JSON. The two differ only in their
 * calls, their size limit and that a secret's data is never printed (the daemon never returns
 * it; the CLI drops it too should one ever come back).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  configSpecProblems,
  inspectJson,
  secretSpecProblems,
  type Config,
  type Secret,
  type SecretSpec,
  type SpecProblem,
} from '@shoal/api';
import { InvalidArgumentError, ShoalError, errnoCode, errorKind } from '@shoal/common';
import { EXIT_CODE_OF_KIND, daemonAction, failureLine } from '../daemon/action.js';
import type { DaemonClient } from '../daemon/client.js';
import { checkFormat, formatInspect, formatList, matchLabels, matchesAny, parseFilters } from '../format/index.js';
import { humanDuration } from '../service/view.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

type Obj = Secret | Config;

/** What differs between secrets and configs. */
export interface ObjectKind {
  readonly noun: 'secret' | 'config';
  list(c: DaemonClient): Promise<Obj[]>;
  create(c: DaemonClient, name: string, labels: Record<string, string>, data: Uint8Array): Promise<Obj>;
  remove(c: DaemonClient, id: string): Promise<void>;
  problems(name: string, labels: Record<string, string>, data: Uint8Array): SpecProblem[];
}

export const SECRETS: ObjectKind = {
  noun: 'secret',
  list: async (c) => (await c.control.listSecrets({})).Secrets ?? [],
  create: async (c, name, labels, data) =>
    (await c.control.createSecret({ Spec: { Name: name, Labels: labels, Data: data } })).Secret ?? {},
  remove: async (c, id) => {
    await c.control.removeSecret({ SecretID: id });
  },
  problems: (name, labels, data) => secretSpecProblems({ Name: name, Labels: labels, Data: data }),
};

export const CONFIGS: ObjectKind = {
  noun: 'config',
  list: async (c) => (await c.control.listConfigs({})).Configs ?? [],
  create: async (c, name, labels, data) =>
    (await c.control.createConfig({ Spec: { Name: name, Labels: labels, Data: data } })).Config ?? {},
  remove: async (c, id) => {
    await c.control.removeConfig({ ConfigID: id });
  },
  problems: (name, labels, data) => configSpecProblems({ Name: name, Labels: labels, Data: data }),
};

/** No secret or config by that ID, ID prefix or name. */
export class ObjectNotFoundError extends ShoalError {
  constructor(noun: string, ref: string) {
    super('CLI_OBJECT_NOT_FOUND', `no such ${noun}: ${ref}`, { kind: 'not-found' });
  }
}

/** An ID, a name, or a unique ID prefix, as docker resolves them. */
export function findObject(all: readonly Obj[], noun: string, ref: string): Obj {
  const exact = all.find((o) => o.ID === ref) ?? all.find((o) => o.Spec?.Name === ref);
  if (exact) return exact;
  const byPrefix = all.filter((o) => (o.ID ?? '').startsWith(ref));
  if (byPrefix.length === 1 && byPrefix[0]) return byPrefix[0];
  if (byPrefix.length > 1)
    throw new InvalidArgumentError(`${noun} ${ref} is ambiguous (${byPrefix.length} matches): give more of its ID`);
  throw new ObjectNotFoundError(noun, ref);
}

/** The JSON docker prints for one object; a secret's data never. */
export function objectJson(kind: ObjectKind, o: Obj): Record<string, unknown> {
  const copy = structuredClone(o);
  if (kind.noun === 'secret' && copy.Spec) delete copy.Spec.Data;
  return inspectJson(kind.noun, copy);
}

/** A secret's external driver (none for configs). */
function driverName(o: Obj): string {
  const spec: SecretSpec | undefined = o.Spec && 'Driver' in o.Spec ? o.Spec : undefined;
  return spec?.Driver?.Name ?? '';
}

function ago(ts: string | undefined, now: number): string {
  const t = Date.parse(ts ?? '');
  return Number.isNaN(t) ? '' : `${humanDuration(Math.max(0, now - t))} ago`;
}

function readData(noun: string, file: string): Uint8Array {
  try {
    return file === '-' ? readFileSync(0) : readFileSync(file);
  } catch (err) {
    const code = errnoCode(err);
    throw new InvalidArgumentError(
      `cannot read the ${noun} data from ${file === '-' ? 'stdin' : file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`,
    );
  }
}

function parseLabels(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    if (key.trim() === '')
      throw new InvalidArgumentError(`invalid argument ${JSON.stringify(v)} for "--label" flag: empty name`);
    out[key] = eq < 0 ? '' : v.slice(eq + 1);
  }
  return out;
}

function pretty(kind: ObjectKind, o: Obj): string {
  const lines = [
    `ID:              ${o.ID ?? ''}`,
    `Name:            ${o.Spec?.Name ?? ''}`,
    ...(Object.keys(o.Spec?.Labels ?? {}).length > 0
      ? ['Labels:', ...Object.entries(o.Spec?.Labels ?? {}).map(([k, v]) => ` - ${k}=${v}`)]
      : []),
    ...(kind.noun === 'secret' ? [`Driver:          ${driverName(o)}`] : []),
    `Created at:      ${o.CreatedAt ?? ''}`,
    `Updated at:      ${o.UpdatedAt ?? ''}`,
  ];
  if (kind.noun === 'config') lines.push('Data:', Buffer.from(o.Spec?.Data ?? new Uint8Array()).toString('utf8'));
  return lines.join('\n') + '\n';
}

/** Registers `shoal secret` or `shoal config`. */
export function registerObjects(program: Command, kind: ObjectKind, description: string): void {
  const noun = kind.noun;
  const cmd = program.command(noun).description(description);

  cmd
    .command('create')
    .description(`Create a ${noun} from a file or STDIN as content`)
    .argument('<name>')
    .argument('<file|->', 'the file with the data, or - for stdin')
    .option('-l, --label <label>', `${noun} labels (repeatable)`, collect, [])
    .option('--template-driver <driver>', 'template driver (not supported)')
    .option('-d, --driver <driver>', 'secret driver (not supported)')
    .action(
      daemonAction(
        async (c, name: string, file: string, o: { label: string[]; templateDriver?: string; driver?: string }) => {
          if (o.templateDriver !== undefined)
            throw new InvalidArgumentError(
              `--template-driver ${JSON.stringify(o.templateDriver)}: templated ${noun}s are not supported`,
            );
          if (o.driver !== undefined)
            throw new InvalidArgumentError(
              `--driver ${JSON.stringify(o.driver)}: external ${noun} drivers are not supported`,
            );
          const labels = parseLabels(o.label);
          const data = readData(noun, file);
          const problems = kind.problems(name, labels, data);
          if (problems.length > 0)
            throw new InvalidArgumentError(
              `invalid ${noun}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
            );
          const created = await kind.create(c, name, labels, data);
          process.stdout.write(`${created.ID ?? ''}\n`);
        },
      ),
    );

  const headers: Record<string, string> = {
    ID: 'ID',
    Name: 'NAME',
    Driver: 'DRIVER',
    CreatedAt: 'CREATED',
    UpdatedAt: 'UPDATED',
  };
  const table =
    noun === 'secret'
      ? '{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}'
      : '{{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}';
  cmd
    .command('ls')
    .alias('list')
    .description(`List ${noun}s`)
    .option('-q, --quiet', 'only display IDs')
    .option('-f, --filter <key=value>', 'filter output (id, label, name)', collect, [])
    .option('--format <format>', "format output: 'table', 'json', 'table TEMPLATE' or a Go template")
    .action(
      daemonAction(async (c, o: { quiet?: boolean; filter: string[]; format?: string }) => {
        const f = parseFilters(o.filter, ['id', 'label', 'name']);
        checkFormat(o.format);
        const now = Date.now();
        const rows = (await kind.list(c))
          .filter(
            (x) =>
              matchesAny(f.get('id'), (v) => (x.ID ?? '').startsWith(v)) &&
              matchesAny(f.get('name'), (v) => (x.Spec?.Name ?? '').startsWith(v)) &&
              matchLabels(x.Spec?.Labels, f.get('label') ?? []),
          )
          .sort((a, b) => (a.Spec?.Name ?? '').localeCompare(b.Spec?.Name ?? ''))
          .map((x) => ({
            ID: x.ID ?? '',
            Name: x.Spec?.Name ?? '',
            ...(noun === 'secret' ? { Driver: driverName(x) } : {}),
            CreatedAt: ago(x.CreatedAt, now),
            UpdatedAt: ago(x.UpdatedAt, now),
            Labels: Object.entries(x.Spec?.Labels ?? {})
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          }));
        process.stdout.write(formatList(rows, o.format, { defaultTable: table, headers, quiet: o.quiet === true }));
      }),
    );

  cmd
    .command('inspect')
    .description(`Display detailed information on one or more ${noun}s`)
    .argument(`<${noun}...>`)
    .option('-f, --format <format>', "format output: 'json' or a Go template")
    .option('--pretty', 'print the information in a human friendly format')
    .action(
      daemonAction(async (c, refs: string[], o: { format?: string; pretty?: boolean }) => {
        if (o.pretty && o.format !== undefined)
          throw new InvalidArgumentError('--format is incompatible with --pretty');
        checkFormat(o.format);
        const all = await kind.list(c);
        const found: Obj[] = [];
        let failed: unknown;
        for (const ref of refs) {
          try {
            found.push(findObject(all, noun, ref));
          } catch (err) {
            failed = err;
            process.stderr.write(failureLine(err) + '\n');
          }
        }
        if (o.pretty) process.stdout.write(found.map((x) => pretty(kind, x)).join('\n'));
        else if (found.length > 0 || failed === undefined)
          process.stdout.write(
            formatInspect(
              found.map((x) => objectJson(kind, x)),
              o.format,
            ),
          );
        if (failed !== undefined) process.exitCode = EXIT_CODE_OF_KIND[errorKind(failed)];
      }),
    );

  cmd
    .command('rm')
    .alias('remove')
    .description(`Remove one or more ${noun}s`)
    .argument(`<${noun}...>`)
    .action(
      daemonAction(async (c, refs: string[]) => {
        const all = await kind.list(c);
        let failed: unknown;
        for (const ref of refs) {
          try {
            await kind.remove(c, findObject(all, noun, ref).ID ?? ref);
            process.stdout.write(`${ref}\n`);
          } catch (err) {
            failed = err;
            process.stderr.write(failureLine(err) + '\n');
          }
        }
        if (failed !== undefined) process.exitCode = EXIT_CODE_OF_KIND[errorKind(failed)];
      }),
    );
}
