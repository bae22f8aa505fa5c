import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as errors from './errors.js';

test('every testkit error code is documented in docs/testkit.md', () => {
  const doc = readFileSync(new URL('../../../docs/testkit.md', import.meta.url), 'utf8');
  const source = readFileSync(new URL('../src/errors.ts', import.meta.url), 'utf8');
  const codes = [...source.matchAll(/super\(\s*'([A-Z_]+)'/g)].map((m) => m[1]);
  assert.ok(codes.length >= 13, `found ${codes.length} codes`);
  for (const code of codes)
    assert.match(doc, new RegExp(`\\| \`${code}\` \\|`), `${code} missing from docs/testkit.md`);
  assert.ok(new errors.LabNotFoundError('x') instanceof errors.TestkitError);
  assert.equal(new errors.LabHostCountError('0').code, 'LAB_HOST_COUNT');
});
