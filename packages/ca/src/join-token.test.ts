import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  caDigestOfDer,
  checkJoinToken,
  newJoinTokens,
  parseJoinToken,
  roleForJoinToken,
  rotateJoinTokens,
} from './join-token.js';
import { RootCA } from './root-ca.js';
import { CaError } from './errors.js';

function code(c: string, kind: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CaError, String(err));
    assert.equal(err.code, c, err.message);
    assert.equal(err.kind, kind);
    return true;
  };
}

test('tokens look like Docker: SWMTKN-1-<50 base36 digest of the root>-<25 base36 secret>, one per role', async () => {
  const root = await RootCA.create();
  const tokens = newJoinTokens(root.digest);
  for (const t of [tokens.worker, tokens.manager]) assert.match(t, /^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
  assert.notEqual(tokens.worker, tokens.manager);
  const digest = BigInt('0x' + createHash('sha256').update(root.cert.raw).digest('hex'));
  assert.equal(parseJoinToken(tokens.worker).caDigest, digest.toString(36).padStart(50, '0'));
  assert.equal(caDigestOfDer(root.cert.raw), root.digest);
  assert.equal(roleForJoinToken(tokens.worker, tokens, root.digest), 'worker');
  assert.equal(roleForJoinToken(tokens.manager, tokens, root.digest), 'manager');
  assert.equal(checkJoinToken(` ${tokens.manager}\n`, tokens, root.digest, 'manager'), 'manager');
});

test('malformed tokens get an error naming the bad part', () => {
  const d = 'a'.repeat(50);
  const s = 'b'.repeat(25);
  const cases: [string, RegExp][] = [
    ['', /must start with SWMTKN-1-/],
    [`SWMTKN-2-${d}-${s}`, /unsupported version "2"/],
    [`SWMTKN-1-${d}`, /expected 4 dash-separated parts/],
    [`SWMTKN-1-${d.slice(1)}-${s}`, /CA digest must be 50 base-36 characters/],
    [`SWMTKN-1-${d.toUpperCase()}-${s}`, /CA digest/],
    [`SWMTKN-1-${d}-${s}x`, /secret must be 25/],
  ];
  for (const [t, re] of cases) {
    assert.throws(
      () => parseJoinToken(t),
      (err: unknown) => {
        code('CA_INVALID_JOIN_TOKEN', 'invalid-argument')(err);
        assert.match((err as Error).message, re);
        return true;
      },
    );
  }
});

test('a wrong token, a rotated token, a worker token for the manager role, a token of another CA are refused', async () => {
  const root = await RootCA.create();
  const other = await RootCA.create();
  const tokens = newJoinTokens(root.digest);
  const refused = code('CA_JOIN_TOKEN_REFUSED', 'permission-denied');

  const wrong = newJoinTokens(root.digest).worker;
  assert.throws(() => roleForJoinToken(wrong, tokens, root.digest), /wrong or rotated/);
  assert.throws(() => roleForJoinToken(wrong, tokens, root.digest), refused);

  const rotated = rotateJoinTokens(tokens, root.digest, ['worker']);
  assert.equal(rotated.manager, tokens.manager, 'only the worker token changed');
  assert.throws(() => roleForJoinToken(tokens.worker, rotated, root.digest), refused);
  assert.equal(roleForJoinToken(rotated.worker, rotated, root.digest), 'worker');

  assert.throws(
    () => checkJoinToken(tokens.worker, tokens, root.digest, 'manager'),
    /worker token cannot join as a manager/,
  );
  assert.throws(() => checkJoinToken(tokens.worker, tokens, root.digest, 'manager'), refused);

  const foreign = `SWMTKN-1-${other.digest}-${parseJoinToken(tokens.worker).secret}`;
  assert.throws(() => roleForJoinToken(foreign, tokens, root.digest), /another root CA/);
});
