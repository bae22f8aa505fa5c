import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_KINDS } from '@shoal/common';
import * as errors from './errors.js';

test('every raft error code is documented in docs/raft.md and every error names its kind', () => {
  const doc = readFileSync(new URL('../../../docs/raft.md', import.meta.url), 'utf8');
  const source = readFileSync(new URL('../src/errors.ts', import.meta.url), 'utf8');
  const calls = [...source.matchAll(/super\(\s*'([A-Z_]+)'([\s\S]*?)\);/g)];
  assert.ok(calls.length >= 19, `found ${calls.length} codes`);
  for (const [, code, rest] of calls) {
    assert.match(doc, new RegExp(`\`${code}\``), `${code} missing from docs/raft.md`);
    assert.match(rest!, /kind: '([a-z-]+)'/, `${code} does not name its kind`);
    const kind = /kind: '([a-z-]+)'/.exec(rest!)![1]!;
    assert.ok((ERROR_KINDS as readonly string[]).includes(kind), `${code}: unknown kind ${kind}`);
  }
  const e = new errors.RaftInvariantError('x');
  assert.ok(e instanceof errors.RaftError);
  assert.equal(e.code, 'RAFT_INVARIANT');
  assert.equal(e.kind, 'internal');
  assert.equal(new errors.ProposalDroppedError('no leader').kind, 'unavailable');
});
