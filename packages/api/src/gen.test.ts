// The committed generated code must be what `npm run proto` makes from proto/ now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

test('src/gen is what `npm run proto` generates from proto/ (run it after changing a .proto)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'shoal-api-drift-'));
  try {
    const out = join(tmp, 'gen');
    const r = spawnSync(process.execPath, [join(pkgDir, 'scripts', 'gen-proto.mjs'), '--out', out], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `gen-proto failed: ${r.stderr}`);
    const committed = join(pkgDir, 'src', 'gen');
    assert.deepEqual(files(out), files(committed), 'generated file list differs: run `npm run proto`');
    for (const f of files(out)) {
      const want = readFileSync(join(out, f), 'utf8');
      const have = readFileSync(join(committed, f), 'utf8');
      assert.ok(want === have, `src/gen/${f} differs from proto/: run \`npm run proto\` and commit the result`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
