#!/usr/bin/env node
/**
 * `npm run images -- [--registry URL] [--cache DIR] [--json]`: builds the offline test images
 * (cached) and prints where the OCI layout is; with --registry, pushes them and prints the
 * references and digests.
 */
import { parseArgs } from 'node:util';
import { errorMessage } from '@shoal/common';
import { buildTestImages } from './build-test-images.js';
import { pushTestImages } from './push-test-images.js';

// `npm run images | head` closes stdout early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      registry: { type: 'string' },
      cache: { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run images -- [--registry http://HOST:PORT [--user U --password P]] [--cache DIR] [--json]\n',
    );
    return 0;
  }
  const set = await buildTestImages(values.cache);
  if (!values.registry) {
    if (values.json) process.stdout.write(JSON.stringify(set, null, 2) + '\n');
    else {
      process.stdout.write(`OCI layout: ${set.layoutDir}\n`);
      for (const i of set.images) process.stdout.write(`  ${i.ref.padEnd(36)} ${i.digest}\n`);
    }
    return 0;
  }
  const url = /^https?:\/\//.test(values.registry) ? values.registry : `http://${values.registry}`;
  const auth = values.user ? { username: values.user, password: values.password ?? '' } : undefined;
  const pushed = await pushTestImages(url, { set, ...(auth ? { auth } : {}) });
  if (values.json) {
    process.stdout.write(JSON.stringify(pushed, null, 2) + '\n');
    return 0;
  }
  for (const p of pushed) {
    process.stdout.write(`${p.remoteRef}\n  manifest ${p.digest} (${p.mediaType})\n`);
    for (const m of p.manifest ? [p.manifest] : (p.children ?? [])) {
      if (!p.manifest) process.stdout.write(`  ${m.platform.os}/${m.platform.architecture} ${m.digest}\n`);
      process.stdout.write(`    config ${m.config.digest}\n`);
      for (const l of m.layers)
        process.stdout.write(`    layer  ${l.digest} (${l.compression}, diff ${l.diffId.slice(0, 19)}…)\n`);
    }
  }
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`images: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  },
);
