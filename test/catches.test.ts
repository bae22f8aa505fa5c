// One error policy: failures are ignored only by name (`ignoreErrno('ENOENT')`, `instanceof
// SomeError`, `errnoCode(err)` and rethrow the rest). This scan fails when a handler that swallows
// everything appears in the sources, tests or scripts. Nothing is allow-listed: a site that truly
// must tolerate any failure gets a named helper that says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

/** Handlers that swallow every error, by what they look like in the text. */
const SWALLOWS: readonly { readonly what: string; readonly re: RegExp }[] = [
  // a promise's catch handler that returns nothing (undefined, null, void 0, an empty block)
  {
    what: 'catch-all promise handler',
    re: /\.catch\(\s*(?:\(\s*(?:[\w$]+(?:\s*:\s*[\w$]+)?)?\s*\)|[\w$]+)\s*=>\s*(?:undefined|null|void 0|\{\s*\})\s*\)/g,
  },
  // a catch clause without a binding cannot look at what it caught
  { what: 'catch clause without binding', re: /\bcatch\s*\{/g },
  // a catch clause that binds the error, then drops it (empty, or only a comment)
  {
    what: 'empty catch clause',
    re: /\bcatch\s*\(\s*[\w$]+(?:\s*:\s*[\w$]+)?\s*\)\s*\{\s*(?:(?:\/\/[^\n]*|\/\*[\s\S]*?\*\/)\s*)*\}/g,
  },
  // an 'error' listener that drops the error: at least log it where 'close' does the handling
  {
    what: "discarding 'error' listener",
    re: /\.on\(\s*['"]error['"]\s*,\s*(?:\(\s*(?:[\w$]+(?:\s*:\s*[\w$]+)?)?\s*\)|[\w$]+)\s*=>\s*(?:undefined|null|void 0|\{\s*\})\s*\)/g,
  },
];

/** Every swallow in `text`, as `line: what: excerpt`. */
export function findSwallows(text: string): string[] {
  const out: { at: number; line: string }[] = [];
  for (const { what, re } of SWALLOWS) {
    for (const m of text.matchAll(re)) {
      const at = m.index;
      const line = text.slice(0, at).split('\n').length;
      out.push({ at, line: `${line}: ${what}: ${m[0].replace(/\s+/g, ' ')}` });
    }
  }
  return out.sort((a, b) => a.at - b.at).map((o) => o.line);
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'dist' || e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (/\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

test('the scan finds each kind of catch-all handler', () => {
  // written with placeholders so that this file does not match its own scan
  const real = (s: string): string => s.replaceAll('CATCH', 'catch').replaceAll('ON(', 'on(').replaceAll('OPEN', '{');
  const samples = [
    'await rm(p).CATCH(() => undefined);',
    'p.CATCH(() => OPEN});',
    'p.CATCH((_e) => null);',
    'p.CATCH(() => void 0);',
    'p.CATCH((err: unknown) => undefined);',
    'try OPEN f(); } CATCH (err: unknown) OPEN}',
    'try OPEN f(); } CATCH OPEN\n  return 0;\n}',
    'try OPEN f(); } CATCH (err) OPEN /* ignore */ }',
    'try OPEN f(); } CATCH (e) OPEN\n  // gone\n}',
    "s.ON('error', () => undefined);",
    "s.ON('error', () => OPEN});",
  ].map(real);
  for (const s of samples) assert.equal(findSwallows(s).length, 1, s);
  // named handling passes
  const fine = [
    "await rm(p).catch(ignoreErrno('ENOENT'));",
    real("try OPEN f(); } catch (err) OPEN\n  if (errnoCode(err) !== 'ENOENT') throw err;\n}"),
    "s.on('error', (err) => log.debug({ err }, 'socket error'));",
    'p.catch((err: unknown) => this.failed(err));',
  ];
  for (const s of fine) assert.deepEqual(findSwallows(s), [], s);
});

test('no source, test or script swallows every error', () => {
  const dirs = [
    ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'src')),
    join(root, 'test'),
    join(root, 'scripts'),
  ];
  const files = dirs.flatMap((d) => sourceFiles(d));
  assert.ok(files.length > 100, `scanned ${files.length} files`);
  const found = files.flatMap((f) => findSwallows(readFileSync(f, 'utf8')).map((h) => `${relative(root, f)}:${h}`));
  assert.deepEqual(
    found,
    [],
    'ignore only named conditions (ignoreErrno, instanceof, errnoCode and rethrow the rest):\n' + found.join('\n'),
  );
});
