/**
 * The ServiceSpec built from `service create` / `service update` flags, compared whole with what
 * docker's CLI builds for the same flags (its opts.go / update.go semantics), and the one-line
 * refusals of bad values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceSpec } from '@shoal/api';
import { Command } from 'commander';
import { createFlags, updateFlags, withListDefaults, type ServiceFlags } from './flags.js';
import { applyServiceUpdate, buildServiceSpec, shellWords } from './spec.js';
import { parseGoDuration, parseNanoCpus, parseRamInBytes } from './units.js';
import { parsePublish, splitCsv } from './opts.js';

/** Parses argv as `shoal service create` does and builds the spec. */
function create(argv: string[], env: NodeJS.ProcessEnv = {}): ServiceSpec {
  let spec: ServiceSpec | undefined;
  const c = createFlags(
    new Command('create').argument('<image>').argument('[command...]').passThroughOptions().exitOverride(),
  ).action((image: string, args: string[], o: Partial<ServiceFlags>) => {
    spec = buildServiceSpec(image, args, withListDefaults(o), env);
  });
  c.parse(argv, { from: 'user' });
  if (!spec) throw new Error('no spec');
  return spec;
}

function update(current: ServiceSpec, argv: string[], env: NodeJS.ProcessEnv = {}): ServiceSpec {
  let spec: ServiceSpec | undefined;
  const c = updateFlags(new Command('update').argument('<service>').exitOverride()).action(
    (_ref: string, o: Partial<ServiceFlags>) => {
      spec = applyServiceUpdate(current, withListDefaults(o), env);
    },
  );
  c.parse([...argv, 'web'], { from: 'user' });
  if (!spec) throw new Error('no spec');
  return spec;
}

test('the minimal create: docker sends empty resources and placement, Init false, a replicated mode and vip', () => {
  assert.deepEqual(create(['--name', 'web', 'nginx:1.27']), {
    Name: 'web',
    Labels: {},
    TaskTemplate: {
      ContainerSpec: { Image: 'nginx:1.27', Labels: {}, Init: false },
      Resources: { Limits: {}, Reservations: {} },
      Placement: {},
    },
    Mode: { Replicated: {} },
    EndpointSpec: { Mode: 'vip' },
  });
});

test('every create flag lands in its Docker field, with docker units and defaults', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-svcspec-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const envFile = join(dir, 'env');
  await writeFile(envFile, '# comment\n\nFROM_FILE=1\nA=from-file\n  INDENTED=x\nUNSET_HERE\nSET_HERE\n');
  const spec = create(
    [
      '--name',
      'api',
      '--replicas',
      '3',
      '--reserve-cpu',
      '0.5',
      '--reserve-memory',
      '64m',
      '--limit-cpu',
      '1.5',
      '--limit-memory',
      '1GiB',
      '--limit-pids',
      '100',
      '--restart-condition',
      'on-failure',
      '--restart-max-attempts',
      '3',
      '--restart-window',
      '2m',
      '--env-file',
      envFile,
      '-e',
      'A=1',
      '--env',
      'FROM_ENV',
      '-e',
      'A=2',
      '--label',
      'tier=web',
      '-l',
      'bare',
      '--container-label',
      'c=d',
      '--hostname',
      '{{.Service.Name}}.{{.Task.Slot}}',
      '-u',
      '1000:1000',
      '-w',
      '/app',
      '--entrypoint',
      "sh -c 'echo hi'",
      '--stop-grace-period',
      '1m30s',
      '--stop-signal',
      'SIGINT',
      '--init',
      '--cap-add',
      'net_admin',
      '--cap-add',
      'CAP_SYS_TIME',
      '--cap-drop',
      'mknod',
      '--cap-drop',
      'NET_ADMIN',
      '--ulimit',
      'nofile=1024:2048',
      '--ulimit',
      'core=0',
      '--sysctl',
      'net.core.somaxconn=1024',
      '--health-cmd',
      'curl -f http://localhost/',
      '--health-interval',
      '10s',
      '--health-timeout',
      '500ms',
      '--health-retries',
      '3',
      '--health-start-period',
      '1m',
      '--publish',
      '8080:80',
      '-p',
      'mode=host,published=9090,target=90,protocol=udp',
      '-p',
      '53/udp',
      '--mount',
      'type=volume,source=data,target=/data,volume-label=a=b,volume-opt=o=1,volume-nocopy',
      '--mount',
      'type=tmpfs,target=/tmp,tmpfs-size=64m,tmpfs-mode=1770',
      '--mount',
      'type=bind,src=/srv,dst=/srv/in,ro,bind-propagation=rslave',
      '--secret',
      's1',
      '--secret',
      'source=s2,target=token,uid=1,gid=2,mode=0400',
      '--config',
      'source=c1,target=/etc/c.conf,mode=0440',
      '--constraint',
      'node.role==worker',
      '--constraint',
      'node.labels.zone != b',
      '--placement-pref',
      'spread=node.labels.zone',
      '--replicas-max-per-node',
      '2',
      '--with-registry-auth',
      '--endpoint-mode',
      'VIP',
      'registry.lab:5000/api:2',
      'serve',
      '--port',
      '80',
    ],
    { FROM_ENV: 'env-value', SET_HERE: 'here' },
  );
  assert.deepEqual(spec, {
    Name: 'api',
    Labels: { tier: 'web', bare: '' },
    TaskTemplate: {
      ContainerSpec: {
        Image: 'registry.lab:5000/api:2',
        Labels: { c: 'd' },
        Args: ['serve', '--port', '80'],
        // env files first, then --env; a later value of a variable replaces it and moves last
        Env: ['FROM_FILE=1', 'INDENTED=x', 'SET_HERE=here', 'FROM_ENV=env-value', 'A=2'],
        Init: true,
        Hostname: '{{.Service.Name}}.{{.Task.Slot}}',
        User: '1000:1000',
        Dir: '/app',
        StopSignal: 'SIGINT',
        Command: ['sh', '-c', 'echo hi'],
        StopGracePeriod: 90e9,
        Mounts: [
          {
            Type: 'volume',
            Source: 'data',
            Target: '/data',
            VolumeOptions: { Labels: { a: 'b' }, DriverConfig: { Options: { o: '1' } }, NoCopy: true },
          },
          { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1770 } },
          { Type: 'bind', Source: '/srv', Target: '/srv/in', ReadOnly: true, BindOptions: { Propagation: 'rslave' } },
        ],
        Healthcheck: {
          Test: ['CMD-SHELL', 'curl -f http://localhost/'],
          Interval: 10e9,
          Timeout: 500e6,
          StartPeriod: 60e9,
          Retries: 3,
        },
        Secrets: [
          { File: { Name: 's1', UID: '0', GID: '0', Mode: 0o444 }, SecretName: 's1' },
          { File: { Name: 'token', UID: '1', GID: '2', Mode: 0o400 }, SecretName: 's2' },
        ],
        Configs: [{ File: { Name: '/etc/c.conf', UID: '0', GID: '0', Mode: 0o440 }, ConfigName: 'c1' }],
        Sysctls: { 'net.core.somaxconn': '1024' },
        // added wins over dropped; normalized with CAP_; sorted
        CapabilityAdd: ['CAP_NET_ADMIN', 'CAP_SYS_TIME'],
        CapabilityDrop: ['CAP_MKNOD'],
        Ulimits: [
          { Name: 'core', Hard: 0, Soft: 0 },
          { Name: 'nofile', Hard: 2048, Soft: 1024 },
        ],
      },
      Resources: {
        Limits: { NanoCPUs: 1_500_000_000, MemoryBytes: 1024 ** 3, Pids: 100 },
        Reservations: { NanoCPUs: 500_000_000, MemoryBytes: 64 * 1024 ** 2 },
      },
      Placement: {
        Constraints: ['node.role==worker', 'node.labels.zone != b'],
        Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }],
        MaxReplicas: 2,
      },
      // from SwarmKit's defaults (delay 5s) with the flags given
      RestartPolicy: { Condition: 'on-failure', Delay: 5e9, MaxAttempts: 3, Window: 120e9 },
    },
    Mode: { Replicated: { Replicas: 3 } },
    EndpointSpec: {
      Mode: 'vip',
      Ports: [
        { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
        { Protocol: 'udp', PublishMode: 'host', PublishedPort: 9090, TargetPort: 90 },
        { Protocol: 'udp', TargetPort: 53, PublishedPort: 0, PublishMode: 'ingress' },
      ],
    },
  });
});

test('modes: jobs take --replicas as completions and --max-concurrent; global has no replicas', () => {
  assert.deepEqual(create(['--mode', 'replicated-job', '--replicas', '5', 'busybox']).Mode, {
    ReplicatedJob: { MaxConcurrent: 5, TotalCompletions: 5 },
  });
  assert.deepEqual(create(['--mode', 'replicated-job', '--replicas', '6', '--max-concurrent', '2', 'busybox']).Mode, {
    ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 6 },
  });
  assert.deepEqual(create(['--mode', 'replicated-job', 'busybox']).Mode, { ReplicatedJob: {} });
  assert.deepEqual(create(['--mode', 'global', 'busybox']).Mode, { Global: {} });
  assert.deepEqual(create(['--mode', 'global-job', 'busybox']).Mode, { GlobalJob: {} });
  assert.deepEqual(create(['--replicas', '0', 'busybox']).Mode, { Replicated: { Replicas: 0 } });
  // --restart-delay alone: the rest of the policy is SwarmKit's default
  assert.deepEqual(create(['--restart-delay', '250ms', 'busybox']).TaskTemplate?.RestartPolicy, {
    Condition: 'any',
    Delay: 250e6,
    MaxAttempts: 0,
  });
  assert.deepEqual(create(['--no-healthcheck', 'busybox']).TaskTemplate?.ContainerSpec?.Healthcheck, {
    Test: ['NONE'],
  });
  assert.deepEqual(create(['--update-parallelism', '2', '--update-order', 'start-first', 'busybox']).UpdateConfig, {
    Parallelism: 2,
    Delay: 0,
    FailureAction: 'pause',
    Monitor: 5e9,
    MaxFailureRatio: 0,
    Order: 'start-first',
  });
  assert.equal(create(['--init', 'busybox']).TaskTemplate?.ContainerSpec?.Init, true);
  assert.equal(create(['--no-init', 'busybox']).TaskTemplate?.ContainerSpec?.Init, false);
  assert.deepEqual(create(['-d', 'busybox', 'sleep', '1']).TaskTemplate?.ContainerSpec?.Args, ['sleep', '1']);
  assert.deepEqual(
    create(['--cap-add', 'ALL', '--cap-add', 'net_raw', '--cap-drop', 'RESET', 'busybox']).TaskTemplate?.ContainerSpec
      ?.CapabilityAdd,
    ['ALL'],
  );
});

test('bad values: one line naming the flag and the value', () => {
  const cases: [string[], RegExp][] = [
    [['--reserve-memory', '12XB'], /^invalid argument "12XB" for "--reserve-memory" flag: invalid size: '12XB'$/],
    [['--limit-memory', '-1'], /for "--limit-memory" flag: invalid size/],
    [['--reserve-cpu', '0.0000000001'], /for "--reserve-cpu" flag: value is too precise/],
    [['--limit-cpu', 'two'], /"two" for "--limit-cpu" flag: failed to parse two as a rational number/],
    [
      ['--constraint', 'node.role=worker'],
      /^invalid argument "node.role=worker" for "--constraint" flag: expected KEY==VALUE or KEY!=VALUE$/,
    ],
    [['--constraint', 'node.colour==red'], /for "--constraint" flag: unknown key "node.colour"/],
    [['--mount', 'type=bind,target=/x'], /for "--mount" flag: a bind mount needs source/],
    [['--mount', 'type=floppy,target=/x'], /for "--mount" flag: invalid mount type 'floppy'/],
    [['--mount', 'source=data'], /for "--mount" flag: target is required/],
    [['--mount', 'type=tmpfs,target=/t,volume-nocopy'], /cannot mix 'volume-\*' options with mount type 'tmpfs'/],
    [['--mount', 'type=volume,target=/t,colour=red'], /unknown option 'colour' in 'colour=red'/],
    [['--mount', 'type=tmpfs,target=/t,tmpfs-size=lots'], /invalid value for tmpfs-size: lots/],
    [['--mount', 'type=volume,target=/t,readonly=maybe'], /invalid boolean value \("maybe"\)/],
    [['--secret', 's1', '--secret', 'source=s2,target=s1'], /^duplicate secret target for s2 not allowed/],
    [
      ['--config', 'source=a,target=/c', '--config', 'source=b,target=/c'],
      /^duplicate config target for b not allowed/,
    ],
    [['--secret', 'target=x'], /for "--secret" flag: source is required/],
    [['--secret', 'source=s,mode=rw'], /for "--secret" flag: invalid mode specified: 'rw'/],
    [['--secret', 'source=s,colour=red'], /invalid field in secret request: colour/],
    [['--restart-delay', '5'], /for "--restart-delay" flag: time: missing unit in duration "5"/],
    [
      ['--restart-condition', 'sometimes'],
      /"sometimes" for "--restart-condition" flag: expected one of none, on-failure, any/,
    ],
    [['--health-interval', '-1s'], /for "--health-interval" flag: duration cannot be negative/],
    [['--stop-grace-period', '10 parsecs'], /for "--stop-grace-period" flag: time: /],
    [['--no-healthcheck', '--health-cmd', 'true'], /^--no-healthcheck conflicts with --health-\* options$/],
    [['--mode', 'global', '--replicas', '2'], /^--replicas can only be used with replicated or replicated-job mode/],
    [['--max-concurrent', '2'], /^--max-concurrent can only be used with replicated-job mode/],
    [['--mode', 'sometimes'], /for "--mode" flag: unknown mode/],
    [
      ['--mode', 'replicated-job', '--update-delay', '1s'],
      /^update and rollback configuration is not supported for jobs$/,
    ],
    [['--replicas', 'three'], /"three" for "--replicas" flag/],
    [['--publish', '1.2.3.4:80:80'], /for "--publish" flag: hostip is not supported/],
    [['--publish', 'mode=bridge,target=80'], /invalid publish mode value \(bridge\)/],
    [['--publish', 'published=80'], /missing mandatory field 'target'/],
    [['--publish', '80/icmp'], /invalid proto: icmp/],
    [['--ulimit', 'nofiles=10'], /for "--ulimit" flag: invalid ulimit type: nofiles/],
    [['--ulimit', 'nofile=20:10'], /soft limit must be less than or equal to hard limit: 20 > 10/],
    [['--placement-pref', 'pack=node.labels.x'], /unsupported placement preference pack \(only spread is supported\)/],
    [['--label', '=v'], /for "--label" flag: invalid label '=v': empty name/],
    [['--env', '=v'], /for "--env" flag: invalid environment variable: =v/],
    [['--entrypoint', 'sh -c "x'], /for "--entrypoint" flag: unterminated double quote/],
    [['--env-file', '/nonexistent/shoal-env'], /for "--env-file" flag: no such file/],
    [['--name', 'bad name'], /^invalid service: Name: name "bad name" must be valid as a DNS name component/],
    [
      ['--endpoint-mode', 'dnsrr', '-p', '80:80'],
      /^invalid service: EndpointSpec.Ports\[0\]: port 80 published in ingress mode can't be used with endpoint mode dnsrr$/,
    ],
  ];
  for (const [args, re] of cases) {
    assert.throws(
      () => create([...args, 'busybox']),
      (err: Error) => {
        assert.match(err.message, re, args.join(' '));
        assert.equal(err.message.includes('\n'), false);
        return true;
      },
      args.join(' '),
    );
  }
});

test('value syntaxes: Go durations, RAMInBytes, NanoCPUs, CSV fields, port ranges, shell words', () => {
  assert.equal(parseGoDuration('--x', '1h2m3.5s'), 3723.5e9);
  assert.equal(parseGoDuration('--x', '1.5µs'), 1500);
  assert.equal(parseGoDuration('--x', '0'), 0);
  assert.equal(parseGoDuration('--x', '-2ms'), -2e6);
  assert.equal(parseRamInBytes('--x', '12'), 12);
  assert.equal(parseRamInBytes('--x', '1.5k'), 1536);
  assert.equal(parseRamInBytes('--x', '2 GiB'), 2 * 1024 ** 3);
  assert.equal(parseRamInBytes('--x', '3tb'), 3 * 1024 ** 4);
  assert.equal(parseNanoCpus('--x', '.25'), 250_000_000);
  assert.equal(parseNanoCpus('--x', '1/4'), 250_000_000);
  assert.equal(parseNanoCpus('--x', '2'), 2e9);
  assert.deepEqual(splitCsv('--x', 'a,"b,c",d'), ['a', 'b,c', 'd']);
  assert.deepEqual(splitCsv('--x', '"volume-opt=o=addr=1,rw",x'), ['volume-opt=o=addr=1,rw', 'x']);
  assert.deepEqual(
    parsePublish('--publish', '8080-8081:80-81/udp').map((p) => [p.PublishedPort, p.TargetPort, p.Protocol]),
    [
      [8080, 80, 'udp'],
      [8081, 81, 'udp'],
    ],
  );
  assert.deepEqual(shellWords('--x', `a "b c" 'd e' f\\ g`), ['a', 'b c', 'd e', 'f g']);
});

const CURRENT: ServiceSpec = {
  Name: 'web',
  Labels: { keep: '1', drop: '2' },
  TaskTemplate: {
    ContainerSpec: {
      Image: 'nginx:1.26',
      Env: ['A=1', 'B=2'],
      Secrets: [{ File: { Name: 'old', UID: '0', GID: '0', Mode: 0o444 }, SecretID: 'sid1', SecretName: 'old' }],
      CapabilityAdd: ['CAP_NET_ADMIN'],
    },
    Placement: { Constraints: ['node.role==worker'] },
    Resources: { Limits: { MemoryBytes: 1024 }, Reservations: {} },
    ForceUpdate: 4,
  },
  Mode: { Replicated: { Replicas: 2 } },
  EndpointSpec: {
    Mode: 'vip',
    Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }],
  },
};

test('update changes only what its flags name, from the current spec', () => {
  const spec = update(CURRENT, [
    '--image',
    'nginx:1.27',
    '--env-add',
    'A=9',
    '--env-add',
    'C=3',
    '--env-rm',
    'B',
    '--label-add',
    'new=x',
    '--label-rm',
    'drop',
    '--constraint-rm',
    'node.role==worker',
    '--constraint-add',
    'node.labels.zone==a',
    '--secret-rm',
    'old',
    '--secret-add',
    'source=fresh,target=t',
    '--replicas',
    '5',
    '--force',
    '--limit-cpu',
    '2',
    '--publish-rm',
    '80',
    '--publish-add',
    '9000:90',
    '--cap-drop',
    'net_admin',
  ]);
  assert.deepEqual(spec, {
    Name: 'web',
    Labels: { keep: '1', new: 'x' },
    TaskTemplate: {
      ContainerSpec: {
        Image: 'nginx:1.27',
        Env: ['A=9', 'C=3'],
        Secrets: [{ File: { Name: 't', UID: '0', GID: '0', Mode: 0o444 }, SecretName: 'fresh' }],
        CapabilityAdd: [],
        CapabilityDrop: ['CAP_NET_ADMIN'],
      },
      Placement: { Constraints: ['node.labels.zone==a'] },
      Resources: { Limits: { MemoryBytes: 1024, NanoCPUs: 2e9 }, Reservations: {} },
      ForceUpdate: 5,
    },
    Mode: { Replicated: { Replicas: 5 } },
    EndpointSpec: {
      Mode: 'vip',
      Ports: [{ Protocol: 'tcp', TargetPort: 90, PublishedPort: 9000, PublishMode: 'ingress' }],
    },
  });
  // the input is not changed
  assert.equal(CURRENT.TaskTemplate?.ContainerSpec?.Image, 'nginx:1.26');
  assert.equal(update(CURRENT, ['--no-init']).TaskTemplate?.ContainerSpec?.Init, false);
  // nothing given: the same spec (no --force: ForceUpdate kept)
  assert.deepEqual(update(CURRENT, []), CURRENT);
  assert.throws(
    () => update(CURRENT, ['--max-concurrent', '2']),
    /--max-concurrent can only be used with replicated-job mode/,
  );
  assert.throws(
    () => update(CURRENT, ['--secret-add', 'a', '--secret-add', 'source=b,target=a']),
    /duplicate secret target/,
  );
  assert.throws(() => update(CURRENT, ['--constraint-add', 'node.role=worker']), /"--constraint-add" flag/);
  assert.throws(() => update({ ...CURRENT, Mode: { Global: {} } }, ['--replicas', '2']), /--replicas can only be used/);
});
