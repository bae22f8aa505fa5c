/**
 * `shoal image pull|ls|load|rm|inspect|gc`: the engine's image store, daemonless (as podman):
 * each call opens the store on the data root, acts and exits. The store is safe to share with a
 * running shoald: metadata changes happen under an flock on `<root>/images.lock`, deletion of
 * content under an exclusive flock on `<root>/gc.lock` that pulls and loads hold shared, and
 * blobs and layer dirs appear only by atomic rename (see docs/engine.md "Image store layout").
 * `rm` and `gc` ask the engine which images containers use and refuse to remove those.
 *
 * Plain HTTP is used only for registries named with --insecure-registry (and loopback ones,
 * as Docker does).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '@shoal/common';
import {
  DEFAULT_ENGINE_ROOT,
  Engine,
  ImageService,
  familiarName,
  parseReference,
  type Credentials,
  type ImageRecord,
  type Platform,
  type PullProgress,
} from '@shoal/engine';

interface RootOpts {
  dataRoot?: string;
  runRoot?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function dataRoot(o: RootOpts): string {
  return o.dataRoot ?? process.env['SHOAL_DATA_ROOT'] ?? DEFAULT_ENGINE_ROOT;
}

function withRoot(cmd: Command): Command {
  return cmd.option(
    '--data-root <dir>',
    `engine state: images and containers (default $SHOAL_DATA_ROOT or ${DEFAULT_ENGINE_ROOT})`,
  );
}

/** The image service with the engine's in-use hook (for rm and gc). */
async function withEngineImages<T>(o: RootOpts, fn: (svc: ImageService) => Promise<T>): Promise<T> {
  const engine = await Engine.open({
    dataRoot: dataRoot(o),
    runRoot: o.runRoot ?? process.env['SHOAL_RUN_ROOT'] ?? '/run/shoal/engine',
  });
  try {
    return await fn(engine.localImages());
  } finally {
    await engine.close();
  }
}

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new InvalidArgumentError(`--platform ${s}: expected os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)}${units[i]}`;
}

function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** Progress on a TTY: one redrawn line per layer. Otherwise: one line per finished layer. */
function progressPrinter(tty: boolean): (e: PullProgress) => void {
  const lines = new Map<string, string>();
  let drawn = 0;
  const redraw = (): void => {
    if (drawn > 0) process.stdout.write(`\x1b[${drawn}A`);
    for (const l of lines.values()) process.stdout.write(`\x1b[2K${l}\n`);
    drawn = lines.size;
  };
  return (e) => {
    if (e.kind === 'resolved') {
      process.stdout.write(`${familiarName(e.ref)}: ${e.layers} layer(s), manifest ${e.manifestDigest}\n`);
      return;
    }
    if (e.kind === 'done') return;
    const id = short(e.digest);
    const text =
      e.phase === 'downloading'
        ? `${id}: downloading ${humanSize(e.done)}/${humanSize(e.total)}`
        : e.phase === 'exists'
          ? `${id}: already present`
          : `${id}: ${e.phase}`;
    if (tty) {
      lines.set(id, text);
      redraw();
    } else if (e.phase === 'done' || e.phase === 'exists') {
      process.stdout.write(`${e.phase === 'done' ? `${id}: pulled ${humanSize(e.total)}` : text}\n`);
    }
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

function rows(images: ImageRecord[]): string[][] {
  const out: string[][] = [];
  for (const img of images) {
    const created = img.created ? img.created.replace(/\.\d+Z$/, 'Z') : '';
    const tags = img.repoTags.length > 0 ? img.repoTags : ['<none>:<none>'];
    for (const t of tags) {
      const i = t.lastIndexOf(':');
      out.push([familiarName(t.slice(0, i)), t.slice(i + 1), short(img.id), created, humanSize(img.size)]);
    }
  }
  return out;
}

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  return (
    [header, ...body]
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('   ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

interface PullFlags extends RootOpts {
  insecureRegistry: string[];
  quiet?: boolean;
  user?: string;
  passwordStdin?: boolean;
  platform?: string;
}

export function registerImage(program: Command): void {
  const image = program.command('image').description('Manage images in the local engine store (daemonless)');

  withRoot(image.command('pull'))
    .description('Pull an image from a registry')
    .argument('<ref>', 'image reference, e.g. 127.0.0.1:5000/shoal-test/busybox:1')
    .option('--insecure-registry <host[:port]>', 'allow plain HTTP for this registry (repeatable)', collect, [])
    .option('-u, --user <user[:password]>', 'registry credentials')
    .option('--password-stdin', 'read the password from standard input')
    .option('--platform <os/arch[/variant]>', 'platform to pick from an index (default linux/amd64)')
    .option('-q, --quiet', 'print only the image id')
    .action(async (ref: string, f: PullFlags) => {
      let credentials: Record<string, Credentials> | undefined;
      if (f.user) {
        const i = f.user.indexOf(':');
        const username = i >= 0 ? f.user.slice(0, i) : f.user;
        let password = i >= 0 ? f.user.slice(i + 1) : '';
        if (f.passwordStdin) password = await readStdin();
        credentials = { [parseReference(ref).registry]: { username, password } };
      }
      const svc = new ImageService({
        root: dataRoot(f),
        registry: { insecureRegistries: f.insecureRegistry, ...(credentials ? { credentials } : {}) },
        ...(f.platform ? { platform: parsePlatform(f.platform) } : {}),
      });
      const rec = await svc.pull(ref, f.quiet ? {} : { onProgress: progressPrinter(process.stdout.isTTY === true) });
      process.stdout.write(f.quiet ? `${rec.id}\n` : `Pulled ${ref}: ${rec.id}\n`);
    });

  withRoot(image.command('ls'))
    .alias('list')
    .description('List images')
    .option('--json', 'print JSON')
    .option('-q, --quiet', 'print only image ids')
    .action(async (f: RootOpts & { json?: boolean; quiet?: boolean }) => {
      const images = await new ImageService({ root: dataRoot(f) }).list();
      if (f.json) process.stdout.write(`${JSON.stringify(images, null, 2)}\n`);
      else if (f.quiet) process.stdout.write(images.map((i) => `${short(i.id)}\n`).join(''));
      else process.stdout.write(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows(images)));
    });

  withRoot(image.command('load'))
    .description('Load images from a docker save or OCI layout tar')
    .requiredOption('-i, --input <file>', 'archive to read')
    .option('--name <repository>', 'repository for OCI entries that carry only a tag')
    .option('-q, --quiet', 'print only image ids')
    .action(async (f: RootOpts & { input: string; name?: string; quiet?: boolean }) => {
      const loaded = await new ImageService({ root: dataRoot(f) }).load(f.input, f.name ? { name: f.name } : {});
      for (const rec of loaded) {
        // Only what the archive named: the image may carry other tags from earlier pulls.
        const tags = rec.loadedRefs.filter((r) => !r.includes('@'));
        if (f.quiet) process.stdout.write(`${rec.id}\n`);
        else if (tags.length === 0) process.stdout.write(`Loaded image ID: ${rec.id}\n`);
        else for (const t of tags) process.stdout.write(`Loaded image: ${familiarName(t)}\n`);
      }
    });

  withRoot(image.command('rm'))
    .alias('remove')
    .description('Remove image references; an image goes with its last reference')
    .argument('<ref...>', 'image references or ids')
    .option('--run-root <dir>', 'runtime directory (default /run/shoal/engine)')
    .option('-f, --force', 'remove even if a container uses it')
    .action(async (refs: string[], f: RootOpts & { force?: boolean }) => {
      await withEngineImages(f, async (svc) => {
        for (const r of refs) {
          const res = await svc.remove(r, { force: f.force === true });
          for (const u of res.untagged) process.stdout.write(`Untagged: ${familiarName(u)}\n`);
          for (const d of res.deleted) process.stdout.write(`Deleted: ${d}\n`);
        }
      });
    });

  withRoot(image.command('inspect'))
    .description('Show an image as JSON (record, config, manifest, layer dirs)')
    .argument('<ref>', 'image reference or id')
    .action(async (ref: string, f: RootOpts) => {
      const info = await new ImageService({ root: dataRoot(f) }).inspect(ref);
      process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    });

  withRoot(image.command('gc'))
    .alias('prune')
    .description('Remove dangling images and unreferenced blobs and layers')
    .option('--run-root <dir>', 'runtime directory (default /run/shoal/engine)')
    .action(async (f: RootOpts) => {
      const res = await withEngineImages(f, (svc) => svc.gc());
      for (const id of res.images) process.stdout.write(`Deleted: ${id}\n`);
      process.stdout.write(
        `Removed ${res.blobs} blob(s), ${res.layers} layer dir(s), ${res.temp} temp file(s) of dead processes\n`,
      );
    });
}
