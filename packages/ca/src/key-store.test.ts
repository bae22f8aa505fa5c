import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UnlockKey, generateDek } from './autolock.js';
import { NodeKeyStore, isLockedKeyFile } from './key-store.js';
import { RootCA } from './root-ca.js';
import { spkiDer } from './keys.js';
import { issueNode, tempDir } from './test-util.js';
import { CaError } from './errors.js';

function code(c: string, kind?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CaError, String(err));
    assert.equal(err.code, c, err.message);
    if (kind) assert.equal(err.kind, kind);
    return true;
  };
}

async function mode(p: string): Promise<number> {
  return (await stat(p)).mode & 0o777;
}

test('keys are 0600 and the directory 0700, whatever the umask; writes leave no temporary files', async (t) => {
  const base = await tempDir(t, 'ks');
  const root = await RootCA.create();
  const n = await issueNode(root, 'manager');
  const old = process.umask(0o000);
  try {
    const store = new NodeKeyStore(join(base, 'certificates'));
    await store.writeRoot(root.certPem);
    await store.write(n.certPem, { key: n.key, dek: generateDek() });
    assert.equal(await mode(store.dir), 0o700);
    assert.equal(await mode(store.keyPath), 0o600);
    assert.equal(await mode(store.certPath), 0o644);
    // Rewrites keep the modes (atomic replace creates a new inode).
    await store.reencrypt(undefined, UnlockKey.generate());
    assert.equal(await mode(store.keyPath), 0o600);
    assert.deepEqual((await readdir(store.dir)).sort(), ['node.crt', 'node.key', 'root.crt']);
  } finally {
    process.umask(old);
  }
});

test('unlocked key file: PKCS#8 PEM with the DEK header; read back matches', async (t) => {
  const dir = await tempDir(t, 'ks');
  const root = await RootCA.create();
  const n = await issueNode(root, 'manager');
  const dek = generateDek();
  const store = new NodeKeyStore(dir);
  await store.write(n.certPem, { key: n.key, dek });
  const text = await readFile(store.keyPath, 'utf8');
  assert.match(text, /^-----BEGIN PRIVATE KEY-----\nShoal-Raft-DEK: /);
  assert.equal(await store.isLocked(), false);
  const back = await store.read();
  assert.ok(spkiDer(back.key).equals(spkiDer(n.key)));
  assert.deepEqual(back.dek, dek);
  assert.equal(back.certPem, n.certPem);
});

test('autolock round trip; locked without a key and with a wrong key are refused; rotation of the unlock key', async (t) => {
  const dir = await tempDir(t, 'ks');
  const root = await RootCA.create();
  const n = await issueNode(root, 'manager');
  const dek = generateDek();
  const k1 = UnlockKey.generate();
  const store = new NodeKeyStore(dir);
  await store.write(n.certPem, { key: n.key, dek }, k1);
  const text = await readFile(store.keyPath, 'utf8');
  assert.ok(isLockedKeyFile(text));
  assert.match(text, /^-----BEGIN SHOAL ENCRYPTED PRIVATE KEY-----\nShoal-Key-Encryption: SHLK-1\n/);
  assert.ok(!text.includes(dek.toString('base64')), 'the DEK is not in clear');
  const pkcs8 = n.key.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  assert.ok(!text.replace(/\n/g, '').includes(pkcs8.slice(40, 80)), 'the key is not in clear');
  assert.equal(await store.isLocked(), true);

  await assert.rejects(store.read(), code('CA_NODE_LOCKED', 'failed-precondition'));
  await assert.rejects(store.read(UnlockKey.generate()), code('CA_WRONG_UNLOCK_KEY', 'permission-denied'));
  const opened = await store.read(k1);
  assert.deepEqual(opened.dek, dek);
  assert.ok(spkiDer(opened.key).equals(spkiDer(n.key)));

  const k2 = UnlockKey.generate();
  await store.reencrypt(k1, k2);
  await assert.rejects(store.read(k1), code('CA_WRONG_UNLOCK_KEY'));
  assert.deepEqual((await store.read(k2)).dek, dek, 'rotation keeps the DEK');
  await assert.rejects(store.reencrypt(k1, undefined), code('CA_WRONG_UNLOCK_KEY'));

  await store.reencrypt(k2, undefined);
  assert.equal(await store.isLocked(), false, 'autolock turned off');
  assert.deepEqual((await store.read()).dek, dek);
});

test('a certificate that does not belong to the key on disk is detected', async (t) => {
  const dir = await tempDir(t, 'ks');
  const root = await RootCA.create();
  const a = await issueNode(root, 'worker');
  const b = await issueNode(root, 'worker');
  const store = new NodeKeyStore(dir);
  await assert.rejects(store.write(b.certPem, { key: a.key }), code('CA_KEY_MISMATCH'));
  await store.write(a.certPem, { key: a.key });
  await writeFile(store.certPath, b.certPem);
  await assert.rejects(store.read(), code('CA_KEY_MISMATCH', 'failed-precondition'));
});
