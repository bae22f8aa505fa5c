/**
 * `shoal stack config` against Docker CLI 28's `docker stack config`, byte for byte, on every case
 * of the parity corpus (test/compose-parity/*\/config-golden.json, recorded by
 * test/compose-parity/record-config.sh; config-golden-skip.json with --skip-interpolation): the
 * same exit status and, for accepted files, the same YAML text on stdout. Then
 * `--skip-interpolation` and a missing `-c` file through the CLI itself.
 */
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ComposeError, loadCompose } from '@shoal/compose';
import { configYaml } from './config-yaml.js';

const CORPUS = fileURLToPath(new URL('../../../../test/compose-parity/', import.meta.url));
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** Where Shoal keeps a different answer on purpose: `case` or `case --skip-interpolation` → why. */
const KNOWN: Record<string, string> = {
  'odd-values --skip-interpolation':
    'Docker rejects `command: []` only when interpolation is skipped (`services.Web.command must be a string`): ' +
    'its schema accepts an empty list, and Shoal validates the same data either way',
};

interface Golden {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function shoalConfig(dir: string, skip: boolean): { exitCode: number; stdout: string } {
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as {
    files: string[];
    env?: Record<string, string>;
  };
  try {
    const loaded = loadCompose({
      files: c.files.map((f) => join(dir, f)),
      env: { ...(c.env ?? {}) },
      checkImages: false,
      ...(skip ? { skipInterpolation: true } : {}),
    });
    return { exitCode: 0, stdout: configYaml(loaded.config).replaceAll(dir.replace(/\/$/, ''), '<CASEDIR>') };
  } catch (e) {
    if (!(e instanceof ComposeError)) throw e;
    return { exitCode: 1, stdout: '' };
  }
}

describe('stack config against docker stack config (CLI 28)', () => {
  const cases = readdirSync(CORPUS)
    .filter((n) => existsSync(join(CORPUS, n, 'config-golden.json')))
    .sort();
  it('has the recorded corpus', () => assert.ok(cases.length >= 50, `only ${cases.length} cases`));
  let same = 0;
  let total = 0;
  for (const name of cases) {
    for (const skip of [false, true]) {
      const file = join(CORPUS, name, skip ? 'config-golden-skip.json' : 'config-golden.json');
      if (!existsSync(file)) continue;
      const label = skip ? `${name} --skip-interpolation` : name;
      it(label, () => {
        total++;
        const golden = JSON.parse(readFileSync(file, 'utf8')) as Golden;
        const got = shoalConfig(join(CORPUS, name), skip);
        const known = KNOWN[label];
        const equal = got.exitCode === golden.exitCode && got.stdout === golden.stdout;
        if (known !== undefined) {
          assert.ok(!equal, `${label} is listed as a known difference but now matches: remove it`);
          return;
        }
        assert.equal(got.exitCode, golden.exitCode, `exit status; Docker said: ${golden.stderr}`);
        assert.equal(got.stdout, golden.stdout);
        same++;
      });
    }
  }
  it('reports the match rate', () => {
    console.log(
      `stack config: ${same} of ${total} identical to Docker CLI 28 (known differences: ${Object.keys(KNOWN).length})`,
    );
  });
});

function shoal(args: string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', HOME: cwd, TAG: '1.2' },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('stack config --skip-interpolation prints the templates as written', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-config-skip-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'docker-stack.yml'),
    'version: "3.8"\nservices:\n  web:\n    image: "example/web:${TAG:-latest}"\n    environment:\n      PRICE: "$$5"\n',
  );
  const plain = shoal(['stack', 'config', '-c', 'docker-stack.yml'], dir);
  assert.equal(plain.status, 0, plain.stderr);
  assert.match(plain.stdout, /image: example\/web:1\.2\n/);
  assert.match(plain.stdout, /PRICE: \$5\n/);
  const skipped = shoal(['stack', 'config', '--skip-interpolation', '-c', 'docker-stack.yml'], dir);
  assert.equal(skipped.status, 0, skipped.stderr);
  assert.match(skipped.stdout, /image: example\/web:\$\{TAG:-latest\}\n/);
  assert.match(skipped.stdout, /PRICE: \$\$5\n/);
});

test('a missing -c file is reported by name, without a position', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-config-missing-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = shoal(['stack', 'config', '-c', 'nope.yml'], dir);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'open nope.yml: no such file or directory\n');
});
