/** `--with-registry-auth`: the credentials of the image's registry from the docker client config. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registryAuthFor, registryOf } from './registry-auth.js';

test('the registry of an image reference', () => {
  assert.equal(registryOf('nginx:1.27'), 'https://index.docker.io/v1/');
  assert.equal(registryOf('library/nginx'), 'https://index.docker.io/v1/');
  assert.equal(registryOf('registry.lab:5000/team/api:2'), 'registry.lab:5000');
  assert.equal(registryOf('localhost/api'), 'localhost');
});

test("the auths entry is sent in docker's X-Registry-Auth encoding; none, or a helper, said plainly", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-regauth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const env = { DOCKER_CONFIG: dir };
  assert.equal(registryAuthFor('registry.lab:5000/api', env), undefined); // no config file
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ auths: { 'registry.lab:5000': { auth: Buffer.from('bob:pa:ss').toString('base64') } } }),
  );
  const enc = registryAuthFor('registry.lab:5000/api:1', env) ?? '';
  assert.deepEqual(JSON.parse(Buffer.from(enc, 'base64url').toString()), {
    username: 'bob',
    password: 'pa:ss',
    serveraddress: 'registry.lab:5000',
  });
  assert.equal(registryAuthFor('other.lab/api', env), undefined);
  await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'desktop' }));
  assert.throws(() => registryAuthFor('other.lab/api', env), /credential helper, which shoal does not support/);
});
