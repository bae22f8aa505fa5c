// Differential test of the fast YAML reader (yamlfast.ts): on every YAML file of the parity
// corpus, every YAML text the other compose tests parse, and tricky snippets, its node tree
// (with offsets and line starts) must equal the yaml Composer's, or it must give up.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { yamlTree } from './yaml.js';

const CORPUS = fileURLToPath(new URL('../../../test/compose-parity/', import.meta.url));
const DIST = fileURLToPath(new URL('.', import.meta.url));

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e)) out.push(p);
  }
  return out;
}

/** 'fast' when the fast reader accepted `text` and agrees with the Composer, 'fallback' when it gave up. */
function compare(text: string): 'fast' | 'fallback' {
  const fast = yamlTree(text, 'fast');
  if (fast.root === undefined) return 'fallback';
  const composer = yamlTree(text, 'composer');
  assert.ok(composer.root !== undefined, `fast reader accepted what the Composer rejects: ${JSON.stringify(text)}`);
  assert.ok(isDeepStrictEqual(fast, composer), `fast reader differs from the Composer on ${JSON.stringify(text)}`);
  return 'fast';
}

/** Snippets the fast reader must read itself (and read as the Composer does). */
const ACCEPTED = [
  'a: 1\nb: 1.0\nc: "x"\nd: |\n  line\n  two\ne: >-\n  folded\n  text\n',
  'x: &a {p: 1, q: [1, 2.5, "s"]}\ny:\n  <<: *a\n  q: 3\nz: [*a, *a]\n',
  'x: &a\n  k: v\nl:\n  - &b one\n  - *b\n  -\n  - - nested\n    - more\nm:\n  <<: [*a]\n',
  'a: 1\na: 2\n',
  'a:\nb: ~\nc: null\nd: ""\ne: 0o17\nf: 0x1F\ng: .inf\nh: yes\n',
  'a:\nb: ~\nc:   # c\n  \nd: x\n',
  'l:\n- a\n-\n- - b\n  - c\n- k: v\n  j: w\n',
  'a: |2\n    x\n  y\n',
  'l:\n  - |2\n     x\n    y\n',
  'l:\n- |1\n  x\n',
  'a: >\n  one\n  two\n\n  three\n     more\n  back\n\n\nb: 1\n',
  'a: >\n  x\n\n    indented\n\n  y\n',
  'a: |+\n  keep\n\n\nb: 1\n',
  'a: |-\n  strip\n\nb: 1\n',
  'a: >+\n  x\n\n',
  'a: >2-\n   x\n  y\n',
  'a: |-2\n   x\n',
  'a: |\n  x\n  # not a comment\n# comment\nb: 2\n',
  'a: |\n    x\n  # c\nb: 1\n',
  'a: >-\n\n  lead blank\n',
  'a: "esc \\x41 \\u00e9 \\U0001F600 \\" \\\\ \\/ \\0 \\t \\n \\e \\N \\_ \\L \\P \\ "\n',
  "a: 'it''s'\nb: ''\nc: '#x'\n",
  '"quoted key": 1\n\'sq\' : 2\n"": 3\n',
  'a: b #c\nd: e#f\ng: h:i\n',
  'a: [a:b, http://x/y, -1, c d , "80:80", \'x\']\n',
  'a: {x: [1, {y: z}], "q": \'r\', u: ~}\n',
  'a: [ ]\nb: { }\nc: []\nd: {}\n',
  'a: &x 1\nb: *x\nc: &y\n  - 1\nd: *y\n',
  'k: v',
  'key with spaces  : v\n',
  'a: x # c\n   # c2\nb: 2\n',
  'a:\n  # c\n  b: 1\n',
  '# top\n\na: 1\n',
  'a: 1 # c\n# only\nb: # c\n  - x # d\n',
  'l:\n  - &a\n    k: v\n  - *a\n',
  'a: &a\n  <<: *a\n',
  's:\n  - "x": 1\n    y: 2\n',
  'a: 0x1F\nb: 1_000\nc: .5\nd: +1\ne: -1.5e3\nf: 08\ng: 0755\n',
  'a: 🙂 ünï\n',
  'a: x\n\n\n',
  'a:\n  b:\n    c:\n      - d\n      - e: f\n        g: h\n  i: j\n',
  'a: &b 1\nc: [&d 2, *b, *d]\nd: {k: &e 3, l: *e}\n',
  '<<: {a: 1}\nb: 2\n',
  'a: -x\nb: --flag\nc: "-"\n',
  'x: &a\n  - 1\ny: &a\n  - 2\nz: *a\n',
  'a:\n- b\nc: d\n',
  'a: ${VAR:-x} $$ $X\n',
  'a: ["${A}", "${B}"]\n',
  'a: {x: 1,y: 2}\n',
];

/** Snippets outside the subset (or invalid): the fast reader must give up. */
const REFUSED = [
  '- a\n',
  'a: 1\n  b: 2\n',
  'a:\n  - x\n  y: 1\n',
  'a: - b\n',
  'a: b: c\n',
  'a: -\n',
  'a: |\n  x',
  'a: :x\n',
  'a: x:\n',
  'a: ?x\n',
  'a: @x\n',
  'a: `x\n',
  'a: %x\n',
  'a: !x y\n',
  'a: !!int "7"\n',
  'l:\n  - &a k: v\n',
  'a: *a\n',
  'a: "x" : y\n',
  'a: |\n   \n  x\n',
  'a: [*b]\n',
  'a: [a: b]\n',
  'a: {a}\n',
  'a: [1, ]\n',
  'a: [1,\n  2]\n',
  'a: {x: 1,\n  y: 2}\n',
  'plain: multi\n  line\n',
  'a: "two\n  lines"\n',
  'a:\n\tb: 1\n',
  'a: 1\r\nb: 2\r\n',
  '--- \na: 1\n',
  'a: 1\n---\nb: 2\n',
  '%YAML 1.2\n---\na: 1\n',
  '? complex\n: v\n',
  'a: "bad \\q"\n',
  'a: "\\ud83d"\n',
  '  a: 1\n',
  'a: [1] x\n',
  'a: "x"y\n',
  'a: [1]#c\n',
  'a: &\n',
  'a: &x:y 1\n',
  '[a]: 1\n',
  'a: [${A}]\n',
  'a: !!str\n',
  '',
  '# only a comment\n',
];

describe('compose YAML: fast reader against the Composer', () => {
  it('reads the subset itself, as the Composer does', () => {
    for (const text of ACCEPTED) assert.equal(compare(text), 'fast', `expected the fast path: ${JSON.stringify(text)}`);
  });
  it('gives up outside the subset', () => {
    for (const text of REFUSED) assert.equal(compare(text), 'fallback', `expected a fallback: ${JSON.stringify(text)}`);
  });
  it('agrees on every YAML file of the parity corpus (or gives up)', () => {
    const files = yamlFiles(CORPUS);
    assert.ok(files.length > 0);
    let fast = 0;
    for (const f of files) if (compare(readFileSync(f, 'utf8')) === 'fast') fast++;
    // The corpus is ordinary Compose: most of it must be read by the fast path.
    assert.ok(fast * 2 > files.length, `only ${fast} of ${files.length} corpus files took the fast path`);
  });
  it('agrees on every line-prefix and line-suffix of the corpus files (or gives up)', () => {
    for (const f of yamlFiles(CORPUS)) {
      const lines = readFileSync(f, 'utf8').split('\n');
      for (let i = 1; i < lines.length; i++) {
        compare(lines.slice(0, i).join('\n') + '\n');
        compare(lines.slice(i).join('\n'));
      }
    }
  });
  it('agrees on seeded random mutations of the snippets and corpus files (or gives up)', () => {
    // A small deterministic PRNG (mulberry32): the same mutations on every run.
    let seed = 0x5eed;
    const rand = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    const pieces = [
      ' ',
      '  ',
      ':',
      ': ',
      '-',
      '- ',
      '#',
      ' #',
      '"',
      "'",
      '\n',
      '\n  ',
      '&a ',
      '*a',
      '[',
      ']',
      '{',
      '}',
    ];
    pieces.push(',', '|', '>', '|-', '>+', '\\', '\\n', '?', '!', 'x', '1', '.5', '<<: ', '~', '\n- ', '\n\n');
    const bases = [...ACCEPTED, ...yamlFiles(CORPUS).map((f) => readFileSync(f, 'utf8').slice(0, 1500))];
    let fast = 0;
    for (let i = 0; i < 4000; i++) {
      let text = bases[rand(bases.length)] as string;
      for (let k = 1 + rand(3); k > 0; k--) {
        const at = rand(text.length + 1);
        const cut = rand(3) === 0 ? rand(4) : 0;
        text =
          text.slice(0, at) + (rand(4) === 0 ? '' : (pieces[rand(pieces.length)] as string)) + text.slice(at + cut);
      }
      if (compare(text) === 'fast') fast++;
    }
    assert.ok(fast > 400, `only ${fast} mutations took the fast path`);
  });
  it('agrees on every YAML text the other compose tests parse', () => {
    const tests = readdirSync(DIST)
      // Every test file that parses Compose YAML (not the reader tests, nor the validators' drift test).
      .filter(
        (f) => f.endsWith('.test.js') && !['yamlfast.test.js', 'yamlcst.test.js', 'validators.test.js'].includes(f),
      )
      .map((f) => join(DIST, f));
    assert.ok(tests.length > 0);
    // In this mode every tree the fast reader accepts is compared with the Composer's (yaml.ts).
    const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_COMPOSE_YAML_CHECK: '1' };
    delete env['NODE_TEST_CONTEXT']; // else the nested runner reports to ours instead of running
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...tests], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, `compose tests failed with SHOAL_COMPOSE_YAML_CHECK=1:\n${r.stdout}\n${r.stderr}`);
    const passed = Number(/^# pass (\d+)$/m.exec(r.stdout)?.[1] ?? 0);
    assert.ok(passed > 50, `expected the compose tests to run, got:\n${r.stdout.slice(-2000)}`);
  });
});
