/**
 * `shoal container ls|ps` and `container inspect` as docker's `ps` and `inspect`: columns,
 * `--filter`, `--format` (the CLI's one formatter), `-q`, `-n`, `-l`, `--no-trunc`.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, hasCode } from '@shoal/common';
import type { ContainerRecord, Engine } from '@shoal/engine';
import { checkFormat, formatInspect, formatList, parseFilters } from '../format/index.js';
import { ignoreCodes } from '../ignore.js';
import { openEngine, withRoots, type GlobalOpts } from './container.js';
import { ATTACHMENT_LABEL } from './container-attach.js';
import { swarmNetworkSettings } from './container-networks.js';
import {
  PS_FILTERS,
  PS_HEADERS,
  PS_TABLE,
  checkPsFilters,
  inspectJson,
  psRow,
  selectContainers,
} from './container-view.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

interface PsFlags extends GlobalOpts {
  all?: boolean;
  quiet?: boolean;
  last?: string;
  latest?: boolean;
  trunc: boolean;
  size?: boolean;
  filter: string[];
  format?: string;
}

/** Every record, read as it is now; one removed meanwhile is left out. */
async function records(engine: Engine): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  for (const s of await engine.list({ all: true })) {
    const r = await engine.inspect(s.id).catch(ignoreCodes('ENGINE_CONTAINER_NOT_FOUND'));
    if (r) out.push(r);
  }
  return out;
}

export function registerPs(c: Command): void {
  withRoots(c.command('ls').alias('ps').description('List containers'))
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('-q, --quiet', 'only display container IDs')
    .option('-n, --last <n>', 'show n last created containers (includes all states)')
    .option('-l, --latest', 'show the latest created container (includes all states)')
    .option('--no-trunc', "don't truncate output")
    .option('-s, --size', 'display total file sizes (not supported)')
    .option('-f, --filter <key=value>', `filter output (${PS_FILTERS.join(', ')}) (repeatable)`, collect, [])
    .option('--format <format>', "format output: 'table', 'table TEMPLATE', 'json' or a Go template")
    .action(async (f: PsFlags) => {
      // bad input: one line, before the engine is opened
      if (f.size)
        throw new InvalidArgumentError(
          '--size is not supported: the engine does not track the size of a container writable layer',
        );
      let last: number | undefined;
      if (f.last !== undefined) {
        if (!/^-?\d+$/.test(f.last))
          throw new InvalidArgumentError(`invalid argument "${f.last}" for "-n, --last" flag: not an integer`);
        last = Number(f.last);
      }
      if (f.latest) last = 1;
      const filters = parseFilters(f.filter, PS_FILTERS);
      checkPsFilters(filters);
      checkFormat(f.format);
      const engine = await openEngine(f, false, false);
      try {
        const shown = selectContainers(await records(engine), filters, { all: f.all, last });
        const now = Date.now();
        const rows = shown.map((r) => psRow(r, { now, trunc: f.trunc }));
        process.stdout.write(
          formatList(rows, f.format, { defaultTable: PS_TABLE, headers: PS_HEADERS, quiet: f.quiet }),
        );
      } finally {
        await engine.close();
      }
    });
}

export function registerInspect(c: Command): void {
  withRoots(c.command('inspect').description('Show containers as Docker JSON').argument('<container...>'))
    .option('-f, --format <format>', "format output: 'json' or a Go template")
    .action(async (refs: string[], f: GlobalOpts & { format?: string }) => {
      checkFormat(f.format);
      const engine = await openEngine(f, false, false);
      try {
        const out: object[] = [];
        for (const ref of refs) {
          let r: ContainerRecord;
          try {
            r = await engine.inspect(ref);
          } catch (err) {
            if (!hasCode(err, 'ENGINE_CONTAINER_NOT_FOUND')) throw err;
            // as docker's: the others are still shown, and the exit code says one was missing
            process.stderr.write(`Error: No such container: ${ref}\n`);
            process.exitCode = 1;
            continue;
          }
          const j = inspectJson(r, {
            volumeSource: (n) => engine.volumes.mountpointOf(n),
            imageConfig: await imageConfig(engine, r),
          });
          // on swarm networks (an attachment sandbox): every network with its address, from shoald
          const settings = r.labels[ATTACHMENT_LABEL] ? await swarmNetworkSettings(r.name) : undefined;
          out.push(settings ? { ...j, NetworkSettings: settings } : j);
        }
        if (out.length > 0 || refs.length === 0) process.stdout.write(formatInspect(out, f.format));
      } finally {
        await engine.close();
      }
    });
}

/** The image's Entrypoint and Cmd, when the image is still here (to split the argv as docker's Config). */
async function imageConfig(
  engine: Engine,
  r: ContainerRecord,
): Promise<{ Entrypoint?: string[]; Cmd?: string[] } | undefined> {
  if (r.createOptions?.entrypoint !== undefined || r.createOptions?.cmd !== undefined) return undefined;
  const img = await engine
    .images()
    .resolve(r.imageId)
    .catch(ignoreCodes('ENGINE_IMAGE_NOT_FOUND', 'ENGINE_INVALID_REFERENCE'));
  if (!img || img.id !== r.imageId) return undefined;
  const c = img.config as { Entrypoint?: string[] | null; Cmd?: string[] | null };
  return { ...(c.Entrypoint ? { Entrypoint: c.Entrypoint } : {}), ...(c.Cmd ? { Cmd: c.Cmd } : {}) };
}
