// The CST fast path and the Composer path of parseComposeYaml must agree: same values, same
// float marks, same positions, same diagnostics, on the parity corpus and on edge cases.
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LineCounter } from 'yaml';
import { Diagnostics } from './errors.js';
import { cstDocument } from './yamlcst.js';
import { isDict, isFloat, parseComposeYaml, type Value } from './yaml.js';

const CORPUS = fileURLToPath(new URL('../../../test/compose-parity/', import.meta.url));

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e)) out.push(p);
  }
  return out;
}

/** Every value with its path, float mark and recorded positions. */
function describeTree(text: string, composer: boolean): unknown {
  const diags = new Diagnostics();
  const parsed = parseComposeYaml('f.yml', text, diags, { composer });
  if (!parsed) return { diags: diags.list };
  const rows: unknown[] = [];
  const visit = (v: Value, path: (string | number)[]) => {
    rows.push([path.join('.'), parsed.positions.value(path), parsed.positions.key(path)]);
    if (Array.isArray(v)) v.forEach((x, i) => visit(x, [...path, i]));
    else if (isDict(v)) for (const [k, x] of Object.entries(v)) visit(x, [...path, k]);
  };
  const floats = (v: Value): unknown =>
    Array.isArray(v)
      ? v.map((x, i) => [floats(x), isFloat(v, i)])
      : isDict(v)
        ? Object.entries(v).map(([k, x]) => [k, floats(x), isFloat(v, k)])
        : v;
  visit(parsed.dict, []);
  return { dict: parsed.dict, floats: floats(parsed.dict), rows, diags: diags.list };
}

const CASES = [
  'a: 1\nb: 1.0\nc: "x"\nd: |\n  line\n  two\ne: >-\n  folded\n  text\n',
  'x: &a {p: 1, q: [1, 2.5, "s"]}\ny:\n  <<: *a\n  q: 3\nz: [*a, *a]\n',
  'x: &a\n  k: v\nl:\n  - &b one\n  - *b\n  -\n  - - nested\n    - more\nm:\n  <<: [*a]\n',
  'a: 1\na: 2\n',
  'a:\nb: ~\nc: null\nd: ""\ne: 0o17\nf: 0x1F\ng: .inf\nh: yes\n',
  'a: *nope\n',
  'a: !!str 5\nb: !!int "7"\n',
  '--- \na: 1\n',
  'a: [1,\n  2]\nb: {x: 1,\n  y: 2}\n',
  "k: 'it''s'\nq: \"tab\\tand\\u00e9\"\nplain: multi\n  line\n",
  'a:\n\tb: 1\n',
  'a: 1\n b: 2\n',
  '- a\n- b\n',
  'a: &x\n  <<: *x\n',
  '? complex\n: v\n',
  'a: b: c\n',
  'a: 1 # c\n# only\nb: # c\n  - x # d\n',
];

describe('compose YAML: CST path against the Composer path', () => {
  it('takes the CST path for an ordinary Compose file', () => {
    const text = 'services:\n  web:\n    image: nginx\n    ports: ["80:80"]\n    deploy: {replicas: 2}\n';
    assert.ok(cstDocument(text, new LineCounter().addNewLine));
  });
  it('agrees on edge cases', () => {
    for (const text of CASES)
      assert.deepEqual(describeTree(text, false), describeTree(text, true), `case ${JSON.stringify(text)}`);
  });
  it('agrees on every YAML file of the parity corpus', () => {
    const files = yamlFiles(CORPUS);
    assert.ok(files.length > 0);
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      assert.deepEqual(describeTree(text, false), describeTree(text, true), f);
    }
  });
});
