/**
 * `shoal volume create|ls|inspect|rm|prune`: the engine's named local volumes on this host, as
 * docker's local driver (daemonless, on the engine's data root like `shoal container`).
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { InvalidArgumentError, errorMessage } from '@shoal/common';
import { checkVolumeName, checkVolumeOptions, type VolumeInfo } from '@shoal/engine';
import { checkFormat, formatInspect, formatList, matchLabels, parseFilters } from '../format/index.js';
import { openEngine, withRoots, type GlobalOpts } from './container.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** `k=v` (or bare `k`, an empty value) into a map. */
function pairs(list: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq === 0) throw new InvalidArgumentError(`${flag} ${JSON.stringify(kv)}: no key`);
    if (eq < 0) out[kv] = '';
    else out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** `--opt type=tmpfs --opt o=size=64m`: the value of `o` keeps its own `=`. */
function driverOpts(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--opt ${JSON.stringify(kv)}: expected key=value`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

function human(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(3).replace(/\.?0+$/, '')}${units[i]}`;
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

export function registerVolume(program: Command): void {
  const v = program.command('volume').description('Manage local volumes on this host');

  withRoots(v.command('create').description('Create a volume').argument('[name]'))
    .option('-d, --driver <name>', 'volume driver (only local)', 'local')
    .option('--label <k=v>', 'label (repeatable)', collect, [])
    .option('-o, --opt <k=v>', 'driver option: type, device, o (repeatable)', collect, [])
    .action(async (name: string | undefined, f: GlobalOpts & { driver: string; label: string[]; opt: string[] }) => {
      const o = { driver: f.driver, labels: pairs(f.label, '--label'), driverOpts: driverOpts(f.opt) };
      // bad input: one line, before anything is opened or made
      if (name !== undefined) checkVolumeName(name);
      checkVolumeOptions(o);
      const engine = await openEngine(f, false, false);
      const vol = await engine.volumes.create(name, o);
      process.stdout.write(`${vol.Name}\n`);
    });

  withRoots(v.command('ls').alias('list').description('List volumes'))
    .option('-q, --quiet', 'only names')
    .option('-f, --filter <k=v>', 'name=, label=, dangling=true|false, driver= (repeatable)', collect, [])
    .option('--format <f>', 'table, json or a Go template')
    .action(async (f: GlobalOpts & { quiet?: boolean; filter: string[]; format?: string }) => {
      const filters = parseFilters(f.filter, ['name', 'label', 'dangling', 'driver']);
      for (const d of filters.get('dangling') ?? []) {
        if (!['true', 'false', '1', '0'].includes(d)) {
          throw new InvalidArgumentError(`invalid filter 'dangling=${d}': true or false`);
        }
      }
      checkFormat(f.format);
      const engine = await openEngine(f, false, false);
      const used = await engine.volumes.usage();
      const rows = (await engine.volumes.list()).filter((vol) => {
        const names = filters.get('name');
        if (names && !names.some((n) => vol.Name.includes(n))) return false;
        const drivers = filters.get('driver');
        if (drivers && !drivers.includes(vol.Driver)) return false;
        const labels = filters.get('label');
        if (labels && !matchLabels(vol.Labels ?? {}, labels)) return false;
        const dangling = filters.get('dangling');
        if (dangling) {
          const isDangling = !used.get(vol.Name)?.length;
          if (!dangling.some((d) => (d === 'true' || d === '1') === isDangling)) return false;
        }
        return true;
      });
      const view = rows.map((vol) => ({
        Driver: vol.Driver,
        Labels: Object.entries(vol.Labels ?? {})
          .map(([k, val]) => `${k}=${val}`)
          .join(','),
        Mountpoint: vol.Mountpoint,
        Name: vol.Name,
        Scope: vol.Scope,
      }));
      process.stdout.write(
        formatList(view, f.format, {
          defaultTable: '{{.Driver}}\t{{.Name}}',
          headers: {
            Driver: 'DRIVER',
            Name: 'VOLUME NAME',
            Labels: 'LABELS',
            Mountpoint: 'MOUNTPOINT',
            Scope: 'SCOPE',
          },
          quietField: 'Name',
          quiet: f.quiet,
        }),
      );
    });

  withRoots(v.command('inspect').description('Show volumes as JSON').argument('<name...>'))
    .option('-f, --format <f>', 'json or a Go template')
    .action(async (names: string[], f: GlobalOpts & { format?: string }) => {
      checkFormat(f.format);
      const engine = await openEngine(f, false, false);
      const out: VolumeInfo[] = [];
      let failed: unknown;
      for (const n of names) {
        try {
          out.push(await engine.volumes.inspect(n));
        } catch (err) {
          failed = err;
          process.stderr.write(`shoal: ${errorMessage(err)}\n`);
        }
      }
      if (out.length || !failed) process.stdout.write(formatInspect(out, f.format));
      if (failed) process.exitCode = 1;
    });

  withRoots(v.command('rm').alias('remove').description('Remove volumes no container uses').argument('<name...>'))
    .option('-f, --force', 'no error for a volume that does not exist')
    .action(async (names: string[], f: GlobalOpts & { force?: boolean }) => {
      const engine = await openEngine(f, false, false);
      for (const n of names) {
        try {
          await engine.volumes.remove(n, { force: f.force });
          process.stdout.write(`${n}\n`);
        } catch (err) {
          process.stderr.write(`shoal: ${errorMessage(err)}\n`);
          process.exitCode = 1;
        }
      }
    });

  withRoots(v.command('prune').description('Remove unused volumes (anonymous ones; all unused with -a)'))
    .option('-a, --all', 'also unused named volumes')
    .option('-f, --force', 'do not ask')
    .option('--filter <k=v>', 'label=k[=v] (repeatable)', collect, [])
    .action(async (f: GlobalOpts & { all?: boolean; force?: boolean; filter: string[] }) => {
      const filters = parseFilters(f.filter, ['label']);
      if (!f.force) {
        const what = f.all ? 'all local volumes' : 'anonymous local volumes';
        const ok = await confirm(
          `WARNING! This will remove ${what} not used by at least one container.\nAre you sure you want to continue?`,
        );
        if (!ok) return;
      }
      const engine = await openEngine(f, false, false);
      const labels = filters.get('label');
      const res = await engine.volumes.prune({
        all: f.all,
        ...(labels ? { filter: (vol: VolumeInfo) => matchLabels(vol.Labels ?? {}, labels) } : {}),
      });
      if (res.removed.length) process.stdout.write(`Deleted Volumes:\n${res.removed.join('\n')}\n\n`);
      process.stdout.write(`Total reclaimed space: ${human(res.spaceReclaimed)}\n`);
    });
}
