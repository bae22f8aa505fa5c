import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCsr } from './csr.js';
import { CaError } from './errors.js';
import { issueForJoin } from './join-request.js';
import { newJoinTokens, rotateJoinTokens } from './join-token.js';
import { generateNodeKey } from './keys.js';
import { RootCA, newClusterId } from './root-ca.js';

test('join requests: the token decides the role, the CA the node ID; bad tokens issue nothing', async () => {
  const root = await RootCA.create();
  const policy = { clusterId: newClusterId(), tokens: newJoinTokens(root.digest), certExpiryMs: 24 * 3600_000 };
  const csr = await createCsr(generateNodeKey(), 'CN=i-pick-my-own-id,OU=swarm-manager');
  const w = await issueForJoin(root, policy, { csrPem: csr, token: policy.tokens.worker });
  const m = await issueForJoin(root, policy, { csrPem: csr, token: policy.tokens.manager });
  assert.equal(w.identity.role, 'worker');
  assert.equal(m.identity.role, 'manager');
  assert.notEqual(w.identity.nodeId, 'i-pick-my-own-id');
  assert.notEqual(w.identity.nodeId, m.identity.nodeId);
  assert.equal(w.identity.clusterId, policy.clusterId);
  assert.equal(w.identity.notAfter.getTime() - w.identity.notBefore.getTime(), 25 * 3600_000, '24 h + 1 h backdate');

  const refused = (code: string) => (err: unknown) =>
    err instanceof CaError && err.code === code && err.kind !== 'internal';
  await assert.rejects(
    issueForJoin(root, policy, { csrPem: csr, token: policy.tokens.worker, role: 'manager' }),
    refused('CA_JOIN_TOKEN_REFUSED'),
  );
  const rotated = { ...policy, tokens: rotateJoinTokens(policy.tokens, root.digest) };
  await assert.rejects(
    issueForJoin(root, rotated, { csrPem: csr, token: policy.tokens.manager }),
    refused('CA_JOIN_TOKEN_REFUSED'),
  );
  await assert.rejects(
    issueForJoin(root, policy, { csrPem: csr, token: 'SWMTKN-1-nope' }),
    refused('CA_INVALID_JOIN_TOKEN'),
  );
  await assert.rejects(
    issueForJoin(root, policy, { csrPem: 'garbage', token: policy.tokens.worker }),
    refused('CA_INVALID_CSR'),
  );
});
