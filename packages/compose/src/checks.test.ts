import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constraintProblem, dnsNameProblem, goFloat } from './checks.js';
import { prepareStack } from './stack.js';
import { errorsOf, messagesOf, prepare } from './test/helpers.js';

describe('checks Docker leaves to the daemon, done before anything is created', () => {
  it('restart condition, failure action, negative delays', () => {
    assert.deepEqual(
      messagesOf(() =>
        prepare(
          'services: {web: {image: a, deploy: {restart_policy: {condition: on_failure, delay: -1s}, update_config: {failure_action: explode, max_failure_ratio: 2}}}}',
        ),
      ).sort(),
      [
        'service web: invalid RestartCondition: "on_failure"',
        'service web: TaskSpec: restart-delay cannot be negative',
        'service web: unrecognized update failure action explode',
        'service web: TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1',
      ].sort(),
    );
  });
  it('resources below what the daemon accepts: 0.001 CPUs, 4 MiB (found by the parity corpus)', () => {
    assert.deepEqual(
      messagesOf(() =>
        prepare(
          "services: {web: {image: a, deploy: {resources: {limits: {cpus: '0.000000001', memory: 1m}, reservations: {cpus: '0.0005', memory: 4m}}}}}",
        ),
      ),
      [
        'service web: invalid cpu value 1e-09: Must be at least 0.001',
        'service web: invalid memory value 1048576: Must be at least 4MiB',
        'service web: invalid cpu value 0.0005: Must be at least 0.001',
      ],
    );
    assert.equal(goFloat(0.00005), '5e-05');
    assert.equal(goFloat(1234567), '1.234567e+06');
    assert.equal(goFloat(123456), '123456');
  });
  it('constraint syntax', () => {
    assert.equal(constraintProblem('node.role==manager'), undefined);
    assert.equal(constraintProblem('node.labels.zone != b'), undefined);
    assert.equal(constraintProblem('node.role=manager'), 'constraint expected one operator from ==, !=');
    assert.equal(constraintProblem('no de==x'), "key 'no de' is invalid");
    assert.equal(constraintProblem('node.id==a,b'), "value 'a,b' is invalid");
    assert.deepEqual(
      errorsOf(() =>
        prepare(
          'services:\n  web:\n    image: a\n    deploy:\n      placement:\n        constraints: [node.role=manager]\n',
        ),
      ),
      ['6:23 service web: constraint expected one operator from ==, !='],
    );
  });
  it('port conflicts between services, duplicates in one service, dnsrr with ingress', () => {
    const yaml = [
      'services:',
      '  a: {image: x, ports: ["8080:80"]}',
      '  b: {image: x, ports: ["8080:81", "9000:90", "9000:91"]}',
      '  c: {image: x, ports: ["7000:70"], deploy: {endpoint_mode: dnsrr}}',
      '  d: {image: x, ports: [{target: 80, published: 8080, mode: host}]}',
    ].join('\n');
    assert.deepEqual(
      messagesOf(() => prepare(yaml)).sort(),
      [
        "service b: port '8080' is already in use by service 'st_a' as an ingress port",
        'service b: EndpointSpec: duplicate published ports provided',
        "service c: EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
      ].sort(),
    );
  });
  it('duplicate mount points', () => {
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, volumes: ["/a:/t1", "/b:/t1"]}}')),
      ['service web: ContainerSpec: duplicate mount point: /t1'],
    );
  });
  it('DNS-invalid and too long names, for networks and services', () => {
    assert.equal(dnsNameProblem('st_web'), undefined);
    assert.equal(dnsNameProblem('st.dot_default'), 'name must be valid as a DNS name component');
    assert.equal(dnsNameProblem('a'.repeat(64)), 'name must be 63 characters or fewer');
    assert.deepEqual(
      messagesOf(() =>
        prepareStack('rs.dot', {
          files: [{ path: '/s/x.yml', content: 'services: {web: {image: a}}' }],
          env: {},
        }),
      ),
      [
        'failed to create network rs.dot_default: name must be valid as a DNS name component',
        'service web: name must be valid as a DNS name component',
      ],
    );
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, networks: ["my net"]}}\nnetworks: {"my net": {}}')),
      ['failed to create network st_my net: name must be valid as a DNS name component'],
    );
  });
  it('a bridge network cannot be used by services', () => {
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, networks: [n]}}\nnetworks: {n: {driver: bridge}}')),
      [
        'The network st_n cannot be used with services. Only networks scoped to the swarm can be used, such as those created with the overlay driver.',
      ],
    );
  });
  it("conflicting secret and config targets, in CLI 28's words (found by the parity corpus)", () => {
    assert.deepEqual(
      messagesOf(() =>
        prepare(
          'services: {web: {image: a, secrets: [a, {source: b, target: a}], configs: [{source: c, target: /x}, {source: d, target: /x}]}}\nsecrets: {a: {file: ./a}, b: {file: ./b}}\nconfigs: {c: {file: ./c}, d: {file: ./d}}',
        ),
      ),
      [
        'service web: duplicate secret target for st_b not allowed',
        'service web: duplicate config target for st_d not allowed',
      ],
    );
  });
  it('of two services publishing one port, the later in the file is reported', () => {
    assert.deepEqual(
      messagesOf(() =>
        prepare('services:\n  web: {image: x, ports: ["8080:80"]}\n  admin: {image: x, ports: ["8080:81"]}'),
      ),
      ["service admin: port '8080' is already in use by service 'st_web' as an ingress port"],
    );
  });
  it('an invalid stack name', () => {
    assert.throws(
      () => prepareStack('  ', { files: [{ path: '/x.yml', content: 'services: {}' }] }),
      /invalid stack name: " {2}"/,
    );
  });
});
