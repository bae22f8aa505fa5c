// The package graph is declared twice (npm dependencies and tsc references) and must match
// the layer table in layers.json (docs/architecture.md): checked here so that drift fails CI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const { allowed } = JSON.parse(readFileSync(join(root, 'layers.json'), 'utf8')) as {
  allowed: Record<string, string[]>;
};

interface PackageJson {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

function shoalDeps(deps: Record<string, string> | undefined): string[] {
  return Object.keys(deps ?? {})
    .filter((d) => d.startsWith('@shoal/'))
    .map((d) => d.slice('@shoal/'.length))
    .sort();
}

const packages = readdirSync(join(root, 'packages')).filter((p) =>
  existsSync(join(root, 'packages', p, 'package.json')),
);

test('every package is in the layer table', () => {
  for (const p of packages) assert.ok(p in allowed, `packages/${p} is missing from layers.json`);
});

for (const p of packages) {
  test(`packages/${p}: dependencies follow the layers and match tsconfig references`, () => {
    const pkg = JSON.parse(readFileSync(join(root, 'packages', p, 'package.json'), 'utf8')) as PackageJson;
    assert.equal(pkg.name, `@shoal/${p}`);
    const deps = shoalDeps(pkg.dependencies);
    for (const d of deps) assert.ok(allowed[p]?.includes(d), `@shoal/${p} may not depend on @shoal/${d}`);
    const tsconfig = JSON.parse(readFileSync(join(root, 'packages', p, 'tsconfig.json'), 'utf8')) as {
      references?: { path: string }[];
    };
    const refs = (tsconfig.references ?? []).map((r) => r.path.replace(/^\.\.\//, '')).sort();
    // dev dependencies (test helpers) may add references, runtime ones must all be referenced
    const all = [...new Set([...deps, ...shoalDeps(pkg.devDependencies)])].sort();
    for (const d of deps) assert.ok(refs.includes(d), `packages/${p}/tsconfig.json lacks a reference to ../${d}`);
    for (const r of refs)
      assert.ok(
        all.includes(r),
        `packages/${p}/tsconfig.json references ../${r} but package.json does not depend on it`,
      );
  });
}

test('no dependency cycles between packages', () => {
  const graph = new Map<string, string[]>();
  for (const p of packages) {
    const pkg = JSON.parse(readFileSync(join(root, 'packages', p, 'package.json'), 'utf8')) as PackageJson;
    graph.set(p, shoalDeps(pkg.dependencies));
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (p: string, path: string[]): void => {
    if (state.get(p) === 'done') return;
    assert.notEqual(state.get(p), 'visiting', `cycle: ${[...path, p].join(' -> ')}`);
    state.set(p, 'visiting');
    for (const d of graph.get(p) ?? []) visit(d, [...path, p]);
    state.set(p, 'done');
  };
  for (const p of packages) visit(p, []);
});
