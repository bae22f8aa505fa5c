/**
 * Image pull benchmark: Shoal's ImageService against skopeo (download + verify into an OCI
 * layout) plus umoci (unpack), side by side in one run, alternating, from one local
 * docker-registry on loopback. The image is synthetic: one gzip layer of many files (default
 * 32 MiB in 512 files, half compressible), so that the figures measure the pipeline, not
 * process start-up. Cold pulls use a fresh store each time; a warm pull re-pulls a present image.
 *
 * `npm run bench -- image [--mb N] [--runs N]`; the last line is one JSON object of figures.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageService } from '@shoal/engine';
import { MediaType, RegistryClient, startRegistry, writeTar, type TarEntry } from '@shoal/testkit';

const say = (s: string): void => void process.stdout.write(`${s}\n`);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;
const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

async function main(): Promise<void> {
  const mb = arg('mb', 32);
  const runs = arg('runs', 3);
  const work = mkdtempSync(join(tmpdir(), 'shoal-bench-image-'));
  const reg = await startRegistry({ dir: join(work, 'registry') });
  try {
    // A layer of `files` files, each half random and half zeros.
    const files = 512;
    const per = Math.floor((mb << 20) / files);
    const entries: TarEntry[] = [{ type: 'dir', path: 'data', mode: 0o755 }];
    for (let i = 0; i < files; i++) {
      const data = Buffer.concat([randomBytes(per >> 1), Buffer.alloc(per - (per >> 1))]);
      entries.push({ type: 'file', path: `data/f${i}`, mode: 0o644, data });
    }
    const tar = writeTar(entries);
    const layer = gzipSync(tar, { level: 6 });
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['sh'] },
        rootfs: { type: 'layers', diff_ids: [sha(tar)] },
      }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: sha(config), size: config.length },
        layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha(layer), size: layer.length }],
      }),
    );
    const client = new RegistryClient(reg.url);
    await client.pushBlob('bench/big', sha(layer), layer);
    await client.pushBlob('bench/big', sha(config), config);
    await client.pushManifest('bench/big', '1', MediaType.ociManifest, manifest);
    const ref = `${reg.addr}/bench/big:1`;
    say(`image ${ref}: ${r1(tar.length / 2 ** 20)} MiB tar, ${r1(layer.length / 2 ** 20)} MiB gzip, ${files} files`);

    const shoal: number[] = [];
    const other: number[] = [];
    for (let i = 0; i < runs; i++) {
      const root = mkdtempSync(join(work, 'shoal-'));
      let t = performance.now();
      await new ImageService({ root }).pull(ref);
      shoal.push(performance.now() - t);
      await rm(root, { recursive: true, force: true });

      const dir = mkdtempSync(join(work, 'skopeo-'));
      t = performance.now();
      execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}/layout:1`]);
      execFileSync('umoci', ['unpack', '--image', `${dir}/layout:1`, `${dir}/bundle`], { stdio: 'ignore' });
      other.push(performance.now() - t);
      await rm(dir, { recursive: true, force: true });
      say(`run ${i + 1}: shoal ${r1(shoal[i] ?? 0)} ms, skopeo+umoci ${r1(other[i] ?? 0)} ms`);
    }
    const root = mkdtempSync(join(work, 'warm-'));
    const svc = new ImageService({ root });
    await svc.pull(ref);
    const warm: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await svc.pull(ref);
      warm.push(performance.now() - t);
    }
    const figures = {
      layer_mib: r1(tar.length / 2 ** 20),
      gzip_mib: r1(layer.length / 2 ** 20),
      runs,
      shoal_cold_pull_ms: r1(median(shoal)),
      skopeo_umoci_ms: r1(median(other)),
      shoal_vs_skopeo_umoci: Math.round((median(shoal) / median(other)) * 100) / 100,
      shoal_mib_per_s: r1(tar.length / 2 ** 20 / (median(shoal) / 1000)),
      shoal_warm_pull_ms: r1(median(warm)),
    };
    say(JSON.stringify(figures));
  } finally {
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
