import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServiceSpec } from '@shoal/api';
import { effectiveCaps } from './convert.js';
import { join } from 'node:path';
import { prepareStack } from './stack.js';
import { errorsOf, messagesOf, prepare, withFiles } from './test/helpers.js';

const service = (yaml: string, env: Record<string, string> = {}, name = 'st_web'): ServiceSpec => {
  const s = prepare(yaml, env).specs.services.find((x) => x.Name === name);
  assert.ok(s, name);
  return s;
};
const container = (yaml: string, env: Record<string, string> = {}) =>
  service(yaml, env).TaskTemplate?.ContainerSpec ?? {};

describe('names, labels and networks', () => {
  it('scopes names with the stack, labels every object, attaches the default network with the service alias', () => {
    const p = prepare('services:\n  web:\n    image: nginx:1\n    labels: {c: "1"}\n    deploy: {labels: {s: "2"}}\n');
    assert.deepEqual(p.specs.networks, [
      {
        Name: 'st_default',
        Labels: { 'com.docker.stack.namespace': 'st' },
        DriverConfiguration: { Name: 'overlay' },
        Scope: 'swarm',
      },
    ]);
    const s = p.specs.services[0];
    assert.equal(s?.Name, 'st_web');
    assert.deepEqual(s?.Labels, { s: '2', 'com.docker.stack.namespace': 'st', 'com.docker.stack.image': 'nginx:1' });
    assert.deepEqual(s?.TaskTemplate?.ContainerSpec?.Labels, { c: '1', 'com.docker.stack.namespace': 'st' });
    assert.deepEqual(s?.TaskTemplate?.Networks, [{ Target: 'st_default', Aliases: ['web'] }]);
    assert.deepEqual(s?.Mode, { Replicated: {} });
    assert.deepEqual(s?.TaskTemplate?.Placement, {});
    assert.deepEqual(s?.TaskTemplate?.Resources, {});
  });
  it('only networks a service uses are created; name: is used verbatim; externals are listed, not created', () => {
    const p = prepare(
      [
        'services:',
        '  web: {image: a, networks: {front: {aliases: [www]}, proxy: null}}',
        '  db: {image: b, networks: [back]}',
        'networks:',
        '  front: {driver_opts: {encrypted: ""}, attachable: true, labels: [x=y]}',
        '  back: {name: shared-back, internal: true, ipam: {config: [{subnet: 198.18.5.0/24}]}}',
        '  proxy: {external: true, name: traefik}',
        '  unused: {}',
      ].join('\n'),
    );
    assert.deepEqual(p.specs.networks, [
      {
        Name: 'shared-back',
        Labels: { 'com.docker.stack.namespace': 'st' },
        DriverConfiguration: { Name: 'overlay' },
        Scope: 'swarm',
        Internal: true,
        IPAMOptions: { Configs: [{ Subnet: '198.18.5.0/24' }] },
      },
      {
        Name: 'st_front',
        Labels: { x: 'y', 'com.docker.stack.namespace': 'st' },
        DriverConfiguration: { Name: 'overlay', Options: { encrypted: '' } },
        Scope: 'swarm',
        Attachable: true,
      },
    ]);
    assert.deepEqual(p.specs.externalNetworks, ['traefik']);
    const web = p.specs.services.find((s) => s.Name === 'st_web');
    assert.deepEqual(web?.TaskTemplate?.Networks, [
      { Target: 'st_front', Aliases: ['www', 'web'] },
      { Target: 'traefik', Aliases: ['web'] },
    ]);
  });
  it('a service on host gets no service-name alias', () => {
    const s = service(
      'services: {web: {image: a, networks: [hostnet]}}\nnetworks: {hostnet: {external: true, name: host}}',
    );
    assert.deepEqual(s.TaskTemplate?.Networks, [{ Target: 'host' }]);
  });
  it('undefined network, secret, config and volume are all reported, with positions', () => {
    const yaml = [
      'services:',
      '  web:',
      '    image: a',
      '    networks: [frontend]',
      '    secrets: [db_pw]',
      '    configs: [app_cfg]',
      '    volumes: ["data:/data"]',
    ].join('\n');
    assert.deepEqual(
      errorsOf(() => prepare(yaml)),
      [
        '4:16 service web: undefined network "frontend"',
        '5:15 service web: undefined secret "db_pw"',
        '6:15 service web: undefined config "app_cfg"',
        '7:15 service web: undefined volume "data"',
      ],
    );
  });
});

describe('container fields', () => {
  it('entrypoint is Command, command is Args (shell-split), and the simple fields', () => {
    const c = container(
      [
        'services:',
        '  web:',
        '    image: a',
        '    entrypoint: ["/bin/sh", "-c"]',
        '    command: echo "a b" \'c d\' e\\ f',
        '    hostname: "{{.Task.Slot}}"',
        '    user: "1000:1000"',
        '    working_dir: /srv',
        '    stop_signal: SIGINT',
        '    stop_grace_period: 1m30s',
        '    tty: true',
        '    stdin_open: true',
        '    read_only: true',
        '    init: false',
        '    isolation: default',
        '    sysctls: {net.core.somaxconn: 1024}',
        '    environment: [B=2, A=1, C]',
      ].join('\n'),
    );
    assert.deepEqual(c.Command, ['/bin/sh', '-c']);
    assert.deepEqual(c.Args, ['echo', 'a b', 'c d', 'e f']);
    assert.equal(c.Hostname, '{{.Task.Slot}}');
    assert.equal(c.User, '1000:1000');
    assert.equal(c.Dir, '/srv');
    assert.equal(c.StopSignal, 'SIGINT');
    assert.equal(c.StopGracePeriod, 90_000_000_000);
    assert.equal(c.TTY, true);
    assert.equal(c.OpenStdin, true);
    assert.equal(c.ReadOnly, true);
    assert.equal(c.Init, false);
    assert.equal(c.Isolation, 'default');
    assert.deepEqual(c.Sysctls, { 'net.core.somaxconn': '1024' });
    assert.deepEqual(c.Env, ['A=1', 'B=2', 'C']);
  });
  it('cap_add/cap_drop normalised, ALL kept, added caps not dropped, sorted', () => {
    const c = container(
      'services: {web: {image: a, cap_add: [net_admin, SYS_TIME], cap_drop: [NET_ADMIN, CAP_CHOWN, mknod]}}',
    );
    assert.deepEqual(c.CapabilityAdd, ['CAP_NET_ADMIN', 'CAP_SYS_TIME']);
    assert.deepEqual(c.CapabilityDrop, ['CAP_CHOWN', 'CAP_MKNOD']);
    assert.deepEqual(effectiveCaps(['all', 'net_admin'], ['ALL']), [['ALL'], []]);
  });
  it('ulimits sorted by name; a single number sets soft = hard', () => {
    const c = container('services: {web: {image: a, ulimits: {nproc: 65535, nofile: {soft: 20000, hard: 40000}}}}');
    assert.deepEqual(c.Ulimits, [
      { Name: 'nofile', Soft: 20000, Hard: 40000 },
      { Name: 'nproc', Soft: 65535, Hard: 65535 },
    ]);
  });
  it('extra_hosts: list kept in order, mapping sorted, host=ip and [ipv6] accepted, entries without separator dropped', () => {
    assert.deepEqual(
      container('services: {web: {image: a, extra_hosts: ["b:1.2.3.4", "a=5.6.7.8", "v6:[::1]", "nosep"]}}').Hosts,
      ['1.2.3.4 b', '5.6.7.8 a', '::1 v6'],
    );
    assert.deepEqual(container('services: {web: {image: a, extra_hosts: {z: 1.1.1.1, a: 2.2.2.2}}}').Hosts, [
      '2.2.2.2 a',
      '1.1.1.1 z',
    ]);
  });
  it('dns and dns_search into DNSConfig, only when set', () => {
    assert.deepEqual(container('services: {web: {image: a, dns: 9.9.9.9, dns_search: [x.local]}}').DNSConfig, {
      Nameservers: ['9.9.9.9'],
      Search: ['x.local'],
    });
    assert.equal(container('services: {web: {image: a}}').DNSConfig, undefined);
  });
  it('logging to LogDriver (options only: empty driver name)', () => {
    const s = service('services: {web: {image: a, logging: {options: {max-size: 10m}}}}');
    assert.deepEqual(s.TaskTemplate?.LogDriver, { Name: '', Options: { 'max-size': '10m' } });
  });
  it('healthcheck: string test is CMD-SHELL, durations in ns, disable gives NONE', () => {
    assert.deepEqual(
      container(
        'services: {web: {image: a, healthcheck: {test: curl -f localhost, interval: 30s, timeout: 5s, start_period: 1m, retries: 3}}}',
      ).Healthcheck,
      { Test: ['CMD-SHELL', 'curl -f localhost'], Interval: 30e9, Timeout: 5e9, StartPeriod: 60e9, Retries: 3 },
    );
    assert.deepEqual(container('services: {web: {image: a, healthcheck: {disable: true}}}').Healthcheck, {
      Test: ['NONE'],
    });
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, healthcheck: {disable: true, test: [CMD, x]}}}')),
      ["service web: test and disable can't be set at the same time"],
    );
  });
});

describe('volumes to mounts', () => {
  it('short and long syntax, named volumes scoped with labels and driver, external by name, binds, tmpfs', () => {
    const c = container(
      [
        'services:',
        '  web:',
        '    image: a',
        '    volumes:',
        '      - data:/data:nocopy',
        '      - /host:/h:ro,rshared',
        '      - /anon',
        '      - ext:/e',
        '      - {type: tmpfs, target: /tmp, tmpfs: {size: 1000}}',
        '      - {type: bind, source: /s, target: /t, read_only: true, consistency: cached}',
        'volumes:',
        '  data: {driver: local, driver_opts: {type: nfs}, labels: {l: "1"}}',
        '  ext: {external: true, name: shared}',
      ].join('\n'),
    );
    assert.deepEqual(c.Mounts, [
      {
        Type: 'volume',
        Source: 'st_data',
        Target: '/data',
        VolumeOptions: {
          NoCopy: true,
          Labels: { l: '1', 'com.docker.stack.namespace': 'st' },
          DriverConfig: { Name: 'local', Options: { type: 'nfs' } },
        },
      },
      { Type: 'bind', Source: '/host', Target: '/h', ReadOnly: true, BindOptions: { Propagation: 'rshared' } },
      { Type: 'volume', Target: '/anon' },
      { Type: 'volume', Source: 'shared', Target: '/e', VolumeOptions: {} },
      { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 1000 } },
      { Type: 'bind', Source: '/s', Target: '/t', ReadOnly: true, Consistency: 'cached' },
    ]);
  });
  it('quirk: a one-letter source before : is a drive letter', () => {
    const c = container('services: {web: {image: a, volumes: ["a:b:c"]}}');
    assert.deepEqual(c.Mounts, [{ Type: 'bind', Source: '/stack/a:b', Target: 'c' }]);
  });
  it('external volume with driver is a conflict; mismatched option blocks are rejected', () => {
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a}}\nvolumes: {data: {external: true, driver: x}}')),
      ['conflicting parameters "external" and "driver" specified for volume "data"'],
    );
    assert.deepEqual(
      messagesOf(() =>
        prepare(
          'services: {web: {image: a, volumes: [{type: volume, source: v, target: /v, bind: {propagation: shared}}]}}\nvolumes: {v: {}}',
        ),
      ),
      ['service web: bind options are incompatible with type volume'],
    );
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, volumes: [{type: tmpfs, source: x, target: /v}]}}')),
      ['service web: invalid tmpfs source, source must be empty'],
    );
  });
});

describe('ports', () => {
  it('short syntax expands ranges, drops the host IP with a warning, sorts by published port', () => {
    const p = prepare(
      'services: {web: {image: a, ports: ["127.0.0.1:9000:90", "8000-8001:80-81/udp", 7000, "8002-8003:82", {target: 53, published: 53, protocol: udp, mode: host}]}}',
    );
    assert.deepEqual(p.specs.services[0]?.EndpointSpec, {
      Ports: [
        { Protocol: 'tcp', TargetPort: 7000, PublishMode: 'ingress' },
        { Protocol: 'udp', TargetPort: 53, PublishedPort: 53, PublishMode: 'host' },
        { Protocol: 'udp', TargetPort: 80, PublishedPort: 8000, PublishMode: 'ingress' },
        { Protocol: 'udp', TargetPort: 81, PublishedPort: 8001, PublishMode: 'ingress' },
        { Protocol: 'tcp', TargetPort: 82, PublishedPort: 8002, PublishMode: 'ingress' },
        { Protocol: 'tcp', TargetPort: 82, PublishedPort: 8003, PublishMode: 'ingress' },
        { Protocol: 'tcp', TargetPort: 90, PublishedPort: 9000, PublishMode: 'ingress' },
      ],
    });
    assert.deepEqual(
      p.warnings.map((w) => w.message),
      ["ignoring IP-address (127.0.0.1:9000:90/tcp) service will listen on '0.0.0.0'"],
    );
  });
  it("long syntax's protocol is lower-cased, as Docker's daemon stores it (found by the parity corpus)", () => {
    assert.deepEqual(service('services: {web: {image: a, ports: [{target: 53, protocol: UDP}]}}').EndpointSpec, {
      Ports: [{ Protocol: 'udp', TargetPort: 53 }],
    });
  });
  it('endpoint_mode is lower-cased', () => {
    assert.deepEqual(service('services: {web: {image: a, deploy: {endpoint_mode: DNSRR}}}').EndpointSpec, {
      Mode: 'dnsrr',
    });
  });
});

describe('deploy', () => {
  it('mode, replicas (0 kept), global, replicated-job and errors', () => {
    assert.deepEqual(service('services: {web: {image: a, deploy: {replicas: 0}}}').Mode, {
      Replicated: { Replicas: 0 },
    });
    assert.deepEqual(service('services: {web: {image: a, deploy: {mode: global}}}').Mode, { Global: {} });
    assert.deepEqual(service('services: {web: {image: a, deploy: {mode: replicated-job, replicas: 4}}}').Mode, {
      ReplicatedJob: { MaxConcurrent: 4, TotalCompletions: 4 },
    });
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, deploy: {mode: global, replicas: 2}}}')),
      ['service web: replicas can only be used with replicated or replicated-job mode'],
    );
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, deploy: {mode: Global}}}')),
      ['service web: Unknown mode: Global'],
    );
  });
  it('resources: cpus exact rational times 1e9, memory in binary units, pids, generic resources', () => {
    const s = service(
      'services: {web: {image: a, deploy: {resources: {limits: {cpus: "1/4", memory: 1.5G, pids: 100}, reservations: {cpus: "0.1", memory: "512MB", generic_resources: [{discrete_resource_spec: {kind: gpu, value: 2}}]}}}}}',
    );
    assert.deepEqual(s.TaskTemplate?.Resources, {
      Limits: { NanoCPUs: 250_000_000, MemoryBytes: 1610612736, Pids: 100 },
      Reservations: {
        NanoCPUs: 100_000_000,
        MemoryBytes: 536870912,
        GenericResources: [{ DiscreteResourceSpec: { Kind: 'gpu', Value: 2 } }],
      },
    });
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, deploy: {resources: {limits: {cpus: half}}}}}')),
      ['service web: failed to parse half as a rational number'],
    );
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, deploy: {resources: {limits: {cpus: "0.0000000001"}}}}}')),
      ['service web: value is too precise'],
    );
  });
  it('restart_policy passed through; else restart: mapped', () => {
    assert.deepEqual(
      service(
        'services: {web: {image: a, deploy: {restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}}}}',
      ).TaskTemplate?.RestartPolicy,
      { Condition: 'on-failure', Delay: 5e9, MaxAttempts: 3, Window: 120e9 },
    );
    assert.deepEqual(service('services: {web: {image: a, restart: unless-stopped}}').TaskTemplate?.RestartPolicy, {
      Condition: 'any',
    });
    assert.deepEqual(service('services: {web: {image: a, restart: "on-failure:4"}}').TaskTemplate?.RestartPolicy, {
      Condition: 'on-failure',
      MaxAttempts: 4,
    });
    assert.equal(service('services: {web: {image: a, restart: "no"}}').TaskTemplate?.RestartPolicy, undefined);
    assert.deepEqual(
      messagesOf(() => prepare('services: {web: {image: a, restart: sometimes}}')),
      ['service web: unknown restart policy: sometimes'],
    );
  });
  it('update_config and rollback_config: parallelism 1 when unset, 0 kept', () => {
    const s = service(
      'services: {web: {image: a, deploy: {update_config: {delay: 10s, failure_action: rollback, monitor: 1m, max_failure_ratio: 0.25, order: start-first}, rollback_config: {parallelism: 0}}}}',
    );
    assert.deepEqual(s.UpdateConfig, {
      Parallelism: 1,
      Delay: 10e9,
      FailureAction: 'rollback',
      Monitor: 60e9,
      MaxFailureRatio: 0.25,
      Order: 'start-first',
    });
    assert.deepEqual(s.RollbackConfig, { Parallelism: 0, MaxFailureRatio: 0, Order: '' });
  });
  it('max_failure_ratio is a float32 written as Docker prints it (0.3, not 0.30000001192092896)', () => {
    const s = service('services: {web: {image: a, deploy: {update_config: {max_failure_ratio: 0.3}}}}');
    assert.equal(s.UpdateConfig?.MaxFailureRatio, 0.3);
    const r = service('services: {web: {image: a, deploy: {update_config: {max_failure_ratio: 0.123456789}}}}');
    assert.equal(r.UpdateConfig?.MaxFailureRatio, 0.12345679);
  });
  it('placement: constraints verbatim, preferences as spread, max_replicas_per_node', () => {
    const s = service(
      'services: {web: {image: a, deploy: {placement: {constraints: [node.role==manager], preferences: [{spread: node.labels.zone}], max_replicas_per_node: 2}}}}',
    );
    assert.deepEqual(s.TaskTemplate?.Placement, {
      Constraints: ['node.role==manager'],
      Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }],
      MaxReplicas: 2,
    });
  });
});

describe('secrets and configs', () => {
  it('every non-external definition is created with file data and labels; references carry target, uid, gid, mode', () => {
    const p = prepare(
      [
        'services:',
        '  web:',
        '    image: a',
        '    secrets: [db_pw, {source: api, target: api.key, uid: "100", gid: "101", mode: 0400}]',
        '    configs: [{source: cfg, target: /etc/app.conf, mode: 440}]',
        'secrets:',
        '  db_pw: {file: ./pw.txt, labels: {k: v}}',
        '  api: {external: true, name: shared_api}',
        '  unused: {file: /abs/u.txt, name: custom}',
        'configs:',
        '  cfg: {file: app.conf, template_driver: golang}',
      ].join('\n'),
    );
    assert.deepEqual(
      p.specs.secrets.map((s) => [s.Name, s.Labels, s.Data?.toString()]),
      [
        ['custom', { 'com.docker.stack.namespace': 'st' }, 'data of /abs/u.txt'],
        ['st_db_pw', { k: 'v', 'com.docker.stack.namespace': 'st' }, 'data of /stack/pw.txt'],
      ],
    );
    assert.deepEqual(
      p.specs.configs.map((c) => [c.Name, c.Templating, c.Data?.toString()]),
      [['st_cfg', { Name: 'golang' }, 'data of /stack/app.conf']],
    );
    assert.deepEqual(p.specs.externalSecrets, ['shared_api']);
    const c = p.specs.services[0]?.TaskTemplate?.ContainerSpec;
    assert.deepEqual(c?.Secrets, [
      { File: { Name: 'api.key', UID: '100', GID: '101', Mode: 0o400 }, SecretName: 'shared_api' },
      { File: { Name: 'db_pw', UID: '0', GID: '0', Mode: 0o444 }, SecretName: 'st_db_pw' },
    ]);
    assert.deepEqual(c?.Configs, [
      { File: { Name: '/etc/app.conf', UID: '0', GID: '0', Mode: 440 }, ConfigName: 'st_cfg' },
    ]);
  });
  it('a missing secret file is reported (with the absolute path) before anything is created', () => {
    withFiles({ 'docker-stack.yml': 'services: {web: {image: a}}\nsecrets:\n  s:\n    file: ./nope\n' }, (dir) => {
      assert.deepEqual(
        errorsOf(() => prepareStack('st', { files: [join(dir, 'docker-stack.yml')], env: {} })),
        [`4:11 open ${join(dir, 'nope')}: no such file or directory`],
      );
    });
  });
});
