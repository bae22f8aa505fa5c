import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DekCipher, UnlockKey, generateDek, rewrapDek, unwrapDek, wrapDek, type RecordCipherLike } from './autolock.js';
import { CaError } from './errors.js';

function code(c: string, kind?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CaError, String(err));
    assert.equal(err.code, c, err.message);
    if (kind) assert.equal(err.kind, kind);
    return true;
  };
}

test('unlock keys: SWMKEY-1-<base64 of 32 bytes>, round trip, clear parse errors', () => {
  const k = UnlockKey.generate();
  const text = k.format();
  assert.match(text, /^SWMKEY-1-[A-Za-z0-9+/]{43}$/);
  assert.ok(UnlockKey.parse(text).equals(k));
  assert.ok(UnlockKey.parse(`${text}=\n`).equals(k), 'padding and whitespace accepted');
  assert.throws(() => UnlockKey.parse('SWMTKN-1-abc'), /must start with SWMKEY-1-/);
  assert.throws(() => UnlockKey.parse('SWMKEY-1-'), code('CA_INVALID_UNLOCK_KEY', 'invalid-argument'));
  assert.throws(() => UnlockKey.parse('SWMKEY-1-AAAA'), /must encode 32 bytes, got 3/);
});

test('DEK wrap/unwrap round trip; a wrong unlock key is refused; rotation re-wraps', () => {
  const k1 = UnlockKey.generate();
  const k2 = UnlockKey.generate();
  const dek = generateDek();
  const wrapped = wrapDek(k1, dek);
  assert.ok(!wrapped.includes(dek), 'the DEK does not appear in the envelope');
  assert.deepEqual(unwrapDek(k1, wrapped), dek);
  assert.throws(() => unwrapDek(k2, wrapped), code('CA_WRONG_UNLOCK_KEY', 'permission-denied'));
  const rewrapped = rewrapDek(k1, k2, wrapped);
  assert.deepEqual(unwrapDek(k2, rewrapped), dek);
  assert.throws(() => unwrapDek(k1, rewrapped), code('CA_WRONG_UNLOCK_KEY'));
});

test('record cipher: AES-256-GCM with random nonces; tampering and another DEK are refused', () => {
  const dek = generateDek();
  const c: RecordCipherLike = new DekCipher(dek);
  const plain = Buffer.from('service web-frontend-secret-name');
  const a = c.seal(plain);
  const b = c.seal(plain);
  assert.notDeepEqual(Buffer.from(a), Buffer.from(b), 'random nonces: same plaintext seals differently');
  assert.equal(Buffer.from(a).indexOf('web-frontend'), -1, 'no plaintext in the sealed bytes');
  assert.deepEqual(Buffer.from(c.open(a)), plain);
  assert.deepEqual(Buffer.from(new DekCipher(dek).open(b)), plain, 'a new cipher on the same DEK opens it');
  const tampered = Buffer.from(a);
  tampered[20]! ^= 1;
  assert.throws(() => c.open(tampered), code('CA_DECRYPTION_FAILED'));
  assert.throws(() => new DekCipher(generateDek()).open(a), code('CA_DECRYPTION_FAILED'));
  assert.throws(() => c.open(new Uint8Array(5)), /too short/);
  assert.deepEqual(Buffer.from(c.open(c.seal(new Uint8Array(0)))), Buffer.alloc(0));
  const sub = Buffer.concat([Buffer.from('xx'), Buffer.from(a)]).subarray(2);
  assert.deepEqual(Buffer.from(c.open(sub)), plain, 'works on views with a byte offset');
});
