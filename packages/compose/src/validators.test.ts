// The precompiled validators (packages/compose/validators/) must be what
// `npm run compose:validators` makes from schemas/compose/ now, and judge as ajv's compiled ones.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SCHEMA_VERSIONS, compileValidator, validatorFor } from './schema.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const committed = join(root, 'packages', 'compose', 'validators');

describe('compose: precompiled schema validators', () => {
  it('are what `npm run compose:validators` generates from schemas/compose/', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'shoal-compose-validators-'));
    try {
      const out = join(tmp, 'validators');
      const r = spawnSync(process.execPath, [join(root, 'scripts', 'gen-compose-validators.mjs'), '--out', out], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, `gen-compose-validators failed: ${r.stderr}`);
      const files = readdirSync(out).sort();
      assert.deepEqual(readdirSync(committed).sort(), files, 'file list differs: run `npm run compose:validators`');
      assert.equal(files.length, SCHEMA_VERSIONS.length + 1);
      for (const f of files)
        assert.ok(
          readFileSync(join(out, f), 'utf8') === readFileSync(join(committed, f), 'utf8'),
          `validators/${f} differs from schemas/compose/: run \`npm run compose:validators\` and commit it`,
        );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('accept and reject as the ajv-compiled ones, with the same errors', () => {
    const docs: unknown[] = [
      {
        version: '3.8',
        services: { web: { image: 'nginx', ports: ['80:80', 8080], healthcheck: { interval: '5s' } } },
      },
      { services: { web: { image: 1, deploy: { replicas: 'x' }, foo: 1, ports: ['99999999:1', 1.5] } } },
      { services: { web: { healthcheck: { interval: 'soon' }, stop_grace_period: '1x', expose: ['x'] } } },
      { networks: { n: { driver: 3 } }, volumes: [], secrets: { s: { file: 1, external: 'x' } } },
    ];
    for (const version of ['3.0', '3.13']) {
      const pre = validatorFor(version);
      const comp = compileValidator(version);
      for (const d of docs) {
        assert.equal(pre(d), comp(d), `${version}: ${JSON.stringify(d)}`);
        assert.deepEqual(pre.errors ?? null, comp.errors ?? null, `${version}: ${JSON.stringify(d)}`);
      }
    }
    assert.equal(validatorFor('3.13')(docs[1]), false);
  });
});
