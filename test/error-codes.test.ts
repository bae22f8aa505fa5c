// One error policy, checked against the docs: for every package whose note (`docs/<package>.md`)
// has an error table (rows `| \`CODE\` | ...`), each code the package's sources throw is in the
// table, each code in the table is thrown somewhere, and where the table gives a kind it is the
// kind of the exported error class with that code. A package picks this up by adding a table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ERROR_KINDS, ShoalError, type ErrorKind } from '@shoal/common';

const root = new URL('../..', import.meta.url).pathname;

interface DocRow {
  code: string;
  kind?: ErrorKind;
}

/** Error table rows of a note: `| \`CODE\` | [kind |] when |`. */
function docRows(doc: string): DocRow[] {
  const rows: DocRow[] = [];
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!m?.[1]) continue;
    const cells = (m[2] ?? '').split('|').map((c) => c.trim().replace(/`/g, ''));
    const kind = cells.find((c): c is ErrorKind => (ERROR_KINDS as readonly string[]).includes(c));
    rows.push(kind ? { code: m[1], kind } : { code: m[1] });
  }
  return rows;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Codes passed to a ShoalError constructor in the package's sources. */
function sourceCodes(pkg: string): Set<string> {
  const codes = new Set<string>();
  for (const f of sourceFiles(join(root, 'packages', pkg, 'src'))) {
    // `super('CODE', ...)` in a class, or `new SomeError('CODE', ...)` for classes that take their code.
    for (const m of readFileSync(f, 'utf8').matchAll(/(?:super|new \w+Error)\(\s*'([A-Z][A-Z0-9_]+)'/g))
      if (m[1]) codes.add(m[1]);
  }
  return codes;
}

type ErrorClass = new (...args: unknown[]) => ShoalError;

/** An instance of an error class, made with placeholder arguments (strings, or lists where needed). */
function instantiate(cls: ErrorClass): ShoalError | undefined {
  const n = Math.max(cls.length, 1);
  const attempts: unknown[][] = [Array<unknown>(n).fill('x'), Array<unknown>(n).fill(['x'])];
  for (let i = 0; i < n; i++) attempts.push(Array.from({ length: n }, (_, j) => (j === i ? ['x'] : 'x')));
  attempts.push([]);
  for (const args of attempts) {
    try {
      return new cls(...args);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err; // a placeholder of the wrong shape: try the next
    }
  }
  return undefined;
}

const packages = readdirSync(join(root, 'packages')).filter((p) => existsSync(join(root, 'docs', `${p}.md`)));
const withTables = packages.filter((p) => docRows(readFileSync(join(root, 'docs', `${p}.md`), 'utf8')).length > 0);

test('the engine, testkit and common notes have error tables', () => {
  for (const p of ['engine', 'testkit', 'common']) assert.ok(withTables.includes(p), `docs/${p}.md has no error table`);
});

for (const pkg of withTables) {
  test(`${pkg}: every error code is documented in docs/${pkg}.md with its kind`, async () => {
    const rows = docRows(readFileSync(join(root, 'docs', `${pkg}.md`), 'utf8'));
    const documented = new Set(rows.map((r) => r.code));
    const thrown = sourceCodes(pkg);
    for (const code of thrown)
      assert.ok(documented.has(code), `${code} (thrown in packages/${pkg}) missing from docs/${pkg}.md`);
    for (const code of documented)
      assert.ok(thrown.has(code), `${code} in docs/${pkg}.md is thrown nowhere in packages/${pkg}`);

    // The kinds, from the exported classes.
    const mod = (await import(pathToFileURL(join(root, 'packages', pkg, 'dist', 'index.js')).href)) as Record<
      string,
      unknown
    >;
    const kinds = new Map<string, ErrorKind>();
    for (const [name, value] of Object.entries(mod)) {
      if (typeof value !== 'function' || !(value.prototype instanceof ShoalError)) continue;
      const e = instantiate(value as ErrorClass);
      // A base class that takes its code (and kind) as arguments has no kind of its own.
      if (!e || e.code === 'x') continue;
      if (thrown.has(e.code)) kinds.set(e.code, e.kind);
      assert.ok(ERROR_KINDS.includes(e.kind), `${name}: kind ${e.kind}`);
    }
    for (const row of rows) {
      if (!row.kind) continue;
      const kind = kinds.get(row.code);
      // Codes given to a base class at the throw site (`new DaemonError('CODE', msg, kind)`) have
      // no class of their own to compare with.
      if (kind === undefined) continue;
      assert.equal(kind, row.kind, `${row.code}: docs/${pkg}.md says ${row.kind}, the class says ${kind}`);
    }
    // A table that gives kinds gives one for every code.
    if (rows.some((r) => r.kind)) {
      for (const code of thrown)
        assert.ok(
          rows.some((r) => r.code === code && r.kind),
          `${code}: no kind in docs/${pkg}.md`,
        );
    }
  });
}
