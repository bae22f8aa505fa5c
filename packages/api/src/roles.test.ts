import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METHOD_ROLES } from './gen/roles.js';
import { ROLES, SERVICES, mayCall, methodRoles } from './roles.js';

test('every RPC of every service declares roles, and every declared path is a real RPC', () => {
  const paths = new Set<string>();
  for (const def of Object.values(SERVICES))
    for (const m of Object.values(def) as { path: string }[]) paths.add(m.path);
  assert.ok(paths.size > 40, `expected the full API, found ${paths.size} methods`);
  for (const p of paths) {
    const roles = methodRoles(p);
    assert.ok(roles && roles.length > 0, `${p} declares no roles`);
    for (const r of roles) assert.ok(ROLES.includes(r), `${p}: unknown role ${r}`);
  }
  assert.deepEqual(Object.keys(METHOD_ROLES).sort(), [...paths].sort());
});

test('roles as the proto declares them: workers cannot call the control API, joiners reach the CA', () => {
  assert.equal(mayCall('/shoal.Control/CreateService', 'manager'), true);
  assert.equal(mayCall('/shoal.Control/CreateService', 'local'), true);
  assert.equal(mayCall('/shoal.Control/CreateService', 'worker'), false);
  assert.equal(mayCall('/shoal.Control/CreateService', undefined), false);
  assert.equal(mayCall('/shoal.Dispatcher/Session', 'worker'), true);
  assert.equal(mayCall('/shoal.Dispatcher/Session', undefined), false);
  assert.equal(mayCall('/shoal.Raft/ProcessRaftMessage', 'worker'), false);
  assert.equal(mayCall('/shoal.RaftMembership/Join', 'manager'), true);
  assert.equal(mayCall('/shoal.CA/IssueNodeCertificate', undefined), true);
  assert.equal(mayCall('/shoal.Swarm/Init', 'manager'), false);
  assert.equal(mayCall('/shoal.Swarm/Init', 'local'), true);
  assert.equal(mayCall('/shoal.Control/NoSuchMethod', 'manager'), false);
  assert.equal(methodRoles('toString'), undefined);
});
