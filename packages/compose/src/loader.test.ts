import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadCompose } from './loader.js';
import { errorsOf, load, messagesOf, withFiles } from './test/helpers.js';

const svc = (l: ReturnType<typeof load>, name = 'web') => {
  const s = l.config.services.find((x) => x.name === name);
  assert.ok(s, `service ${name}`);
  return s;
};

describe('YAML as Docker CLI 28 reads it', () => {
  it('yes/no stay strings (YAML 1.2), so they pass as environment values', () => {
    const l = load(
      'services:\n  web:\n    image: a\n    environment:\n      A: yes\n      B: on\n      C: 0755\n      D: 1.50\n',
    );
    assert.deepEqual(
      [...svc(l).environment],
      [
        ['A', 'yes'],
        ['B', 'on'],
        ['C', '493'],
        ['D', '1.5'],
      ],
    );
  });
  it('a duplicate key is an error at the second key, naming the first line', () => {
    assert.deepEqual(
      errorsOf(() => load('services:\n  web:\n    image: a\n  web:\n    image: b\n')),
      ['4:3 mapping key "web" already defined at line 2'],
    );
  });
  it('anchors, aliases, merge keys and x- extension fields', () => {
    const l = load(
      [
        'version: "3.7"',
        'x-defaults: &defaults',
        '  image: base:1',
        '  environment: {A: "1"}',
        '  labels: &labels {team: core}',
        'services:',
        '  web:',
        '    <<: *defaults',
        '    image: web:2',
        '    x-note: hello',
        '    deploy:',
        '      labels: *labels',
      ].join('\n'),
    );
    const s = svc(l);
    assert.equal(s.image, 'web:2');
    assert.deepEqual([...s.environment], [['A', '1']]);
    assert.deepEqual(s.deploy.labels, { team: 'core' });
    assert.deepEqual(s.extras, { 'x-note': 'hello' });
    assert.ok(l.config.extras?.['x-defaults']);
  });
  it('explicit keys win over merged ones, and the first merge source wins over later ones', () => {
    const l = load(
      'x-a: &a {image: one, user: u1}\nx-b: &b {image: two, hostname: h, user: u2}\nservices:\n  web:\n    image: mine\n    <<: [*a, *b]\n',
    );
    const s = svc(l);
    assert.equal(s.image, 'mine');
    assert.equal(s.user, 'u1');
    assert.equal(s.hostname, 'h');
  });
  it('a syntax error is reported with its position', () => {
    const e = errorsOf(() => load('services:\n  web:\n    image: "nginx\n'));
    assert.equal(e.length, 1);
    assert.match(e[0] ?? '', /^\d+:\d+ yaml: /);
  });
  it('the top level must be a mapping', () => {
    assert.deepEqual(
      messagesOf(() => load('')),
      ['top-level object must be a mapping'],
    );
    assert.deepEqual(
      messagesOf(() => load('- a\n- b\n')),
      ['top-level object must be a mapping'],
    );
  });
  it('long-syntax ports (uniqueItems over mappings) validate', () => {
    // Regression: null-prototype mappings made ajv's equality check throw.
    const l = load('services: {web: {image: a, ports: [{target: 80, published: 80}, {target: 81, published: 81}]}}');
    assert.equal(svc(l).ports?.length, 2);
  });
  it('a __proto__ key is kept as data', () => {
    const l = load('services: {web: {image: a, labels: {__proto__: x}}}');
    assert.deepEqual(Object.entries(svc(l).labels ?? {}), [['__proto__', 'x']]);
  });
  it('a non-string key is rejected', () => {
    assert.deepEqual(
      errorsOf(() => load('services:\n  web:\n    image: a\n    environment:\n      1: x\n')),
      ['5:7 non-string key in services.web.environment: 1'],
    );
  });
});

describe('version and schema validation', () => {
  it('version is optional and means 3.13; "3" means 3.13', () => {
    assert.equal(load('services: {web: {image: a}}').config.version, '3.13');
    assert.equal(load('version: "3"\nservices: {web: {image: a}}').config.version, '3.13');
    assert.equal(load('version: "3.2"\nservices: {web: {image: a}}').config.version, '3.2');
  });
  it('unsupported versions and non-string versions', () => {
    assert.deepEqual(
      messagesOf(() => load('version: "2.4"\nservices: {web: {image: a}}')),
      ['unsupported Compose file version: 2.4'],
    );
    assert.deepEqual(
      messagesOf(() => load('version: 3.8\nservices: {web: {image: a}}')),
      ['version must be a string'],
    );
  });
  it('a key newer than the declared version is rejected', () => {
    assert.deepEqual(
      messagesOf(() =>
        load(
          'version: "3.0"\nservices:\n  web:\n    image: a\n    deploy: {placement: {preferences: [{spread: node.id}]}}\n',
        ),
      ),
      ['services.web.deploy.placement Additional property preferences is not allowed'],
    );
  });
  it('x- keys are allowed at the root from 3.4 and in services from 3.7', () => {
    assert.deepEqual(
      messagesOf(() => load('version: "3.3"\nx-a: 1\nservices: {web: {image: a}}')),
      ['(root) Additional property x-a is not allowed'],
    );
    assert.deepEqual(
      messagesOf(() => load('version: "3.6"\nservices: {web: {image: a, x-b: 1}}')),
      ['services.web Additional property x-b is not allowed'],
    );
    load('version: "3.7"\nx-a: 1\nservices: {web: {image: a, x-b: 1}}');
  });
  it('reports every schema error at once, each at its key or value', () => {
    const yaml = [
      'services:', // 1
      '  web:', // 2
      '    image: nginx', // 3
      '    foo: 1', // 4
      '    ports: ["abc", {a: 1}]', // 5
      '    environment: {A: [1]}', // 6
      '    deploy:', // 7
      '      replicas: two', // 8
      '      update_config: {order: sideways}', // 9
      '      resources: {limits: {cpus: 0.5}}', // 10
      '    healthcheck: {interval: 10s, timeout: 10}', // 11
      '    init: "true"', // 12
      '  "web app": {image: a}', // 13
    ].join('\n');
    assert.deepEqual(
      errorsOf(() => load(yaml)),
      [
        '4:5 services.web Additional property foo is not allowed',
        "5:13 services.web.ports.0 Does not match format 'ports'",
        '5:21 services.web.ports.1 Additional property a is not allowed',
        '6:22 services.web.environment.A must be a string, number or null',
        '8:17 services.web.deploy.replicas must be a integer',
        '9:30 services.web.deploy.update_config.order services.web.deploy.update_config.order must be one of the following: "start-first", "stop-first"',
        '10:34 services.web.deploy.resources.limits.cpus must be a string',
        '11:43 services.web.healthcheck.timeout must be a string',
        '12:11 services.web.init must be a boolean',
        '13:3 services Additional property web app is not allowed',
      ],
    );
  });
  it('durations must match Go duration syntax', () => {
    assert.deepEqual(
      messagesOf(() => load('services: {web: {image: a, stop_grace_period: 10}}')),
      ['services.web.stop_grace_period must be a string'],
    );
    assert.deepEqual(
      messagesOf(() => load('services: {web: {image: a, stop_grace_period: "10x"}}')),
      ["services.web.stop_grace_period Does not match format 'duration'"],
    );
    load('services: {web: {image: a, stop_grace_period: 1m30s, healthcheck: {interval: "0"}}}');
  });
  it('network names are not constrained by the schema; service names are', () => {
    load('services: {web: {image: a, networks: ["my net"]}}\nnetworks: {"my net": {}}');
    assert.deepEqual(
      messagesOf(() => load('services: {"a/b": {image: a}}')),
      ['services Additional property a/b is not allowed'],
    );
  });
  it('long-syntax volumes need a type', () => {
    assert.deepEqual(
      messagesOf(() => load('services: {web: {image: a, volumes: [{target: /x}]}}')),
      ['services.web.volumes.0 type is required'],
    );
  });
  it('list items must be unique where the schema says so', () => {
    assert.deepEqual(
      messagesOf(() => load('services: {web: {image: a, cap_add: [NET_ADMIN, NET_ADMIN]}}')),
      ['services.web.cap_add array items[0,1] must be unique'],
    );
  });
  it("forbidden keys are reported with Docker's hint", () => {
    assert.deepEqual(
      errorsOf(() => load('services:\n  web:\n    image: a\n    mem_limit: 1g\n    extends: x\n')),
      [
        '4:5 Compose file contains unsupported options: mem_limit: Set resource limits using deploy.resources',
        '5:5 Compose file contains unsupported options: extends: Support for `extends` is not implemented yet.',
      ],
    );
  });
  it('an empty or invalid image is rejected before anything is created', () => {
    assert.deepEqual(
      messagesOf(() => load('services: {web: {build: .}}')),
      ['invalid image reference for service web: no image specified'],
    );
    assert.deepEqual(
      messagesOf(() => load('services: {web: {image: "Nginx:latest"}}')),
      ['invalid image reference for service web: invalid reference format: repository name (Nginx) must be lowercase'],
    );
    assert.deepEqual(
      messagesOf(() => load('services: {web: {image: "nginx:"}}')),
      ['invalid image reference for service web: invalid reference format'],
    );
  });
});

describe('warnings', () => {
  it('unsupported and deprecated options, sorted', () => {
    const l = load(
      'services:\n  web: {image: a, restart: always, build: ., container_name: c, expose: ["80"]}\n  db: {image: b, privileged: true}',
    );
    assert.deepEqual(
      l.warnings.map((w) => w.message),
      [
        'Ignoring unsupported options: build, privileged, restart',
        "Ignoring deprecated options:\n\ncontainer_name: Setting the container name is not supported.\n\nexpose: Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
      ],
    );
  });
});

describe('interpolation in files', () => {
  it('keys are never interpolated', () => {
    assert.deepEqual(
      messagesOf(() => load('services:\n  ${K}:\n    image: a\n', { K: 'x' })),
      ['services Additional property ${K} is not allowed'],
    );
  });
  it('substitutes values and casts the paths Docker casts', () => {
    const l = load(
      'services:\n  web:\n    image: "nginx:${TAG:-latest}"\n    read_only: ${RO}\n    deploy:\n      replicas: ${N}\n      labels: {a: "${N}"}\n',
      { N: '3', RO: 'yes', K: 'x' },
    );
    const s = l.config.services[0];
    assert.equal(s?.image, 'nginx:latest');
    assert.equal(s?.readOnly, true);
    assert.equal(s?.deploy.replicas, 3);
    assert.deepEqual(s?.deploy.labels, { a: '3' });
  });
  it('a literal "3" is not cast (only substituted strings are)', () => {
    assert.deepEqual(
      messagesOf(() => load('services: {web: {image: a, deploy: {replicas: "3"}}}')),
      ['services.web.deploy.replicas must be a integer'],
    );
  });
  it("reports a failed cast and a required variable with Docker's wording and position", () => {
    const yaml =
      'services:\n  web:\n    image: ${TAG:?must be set}\n    deploy: {replicas: "${N}"}\n    read_only: ${RO}\n';
    assert.deepEqual(
      errorsOf(() => load(yaml, { N: 'two', RO: 'maybe' })),
      [
        '3:12 invalid interpolation format for services.web.image: "required variable TAG is missing a value: must be set"; you may need to escape any $ with another $',
        '4:24 error while interpolating services.web.deploy.replicas: failed to cast to expected type: strconv.Atoi: parsing "two": invalid syntax',
        '5:16 error while interpolating services.web.read_only: failed to cast to expected type: invalid boolean: maybe',
      ],
    );
  });
  it('an unset variable in replicas fails the cast on ""', () => {
    assert.deepEqual(
      messagesOf(() => load('services: {web: {image: a, deploy: {replicas: "${N}"}}}')),
      [
        'error while interpolating services.web.deploy.replicas: failed to cast to expected type: strconv.Atoi: parsing "": invalid syntax',
      ],
    );
  });
  it('list elements show as [] in the path; x- sections are interpolated too', () => {
    assert.deepEqual(
      messagesOf(() => load('x-a: ["$"]\nservices: {web: {image: a, command: ["echo", "$ "]}}')),
      [
        'invalid interpolation format for x-a.[]: "$"; you may need to escape any $ with another $',
        'invalid interpolation format for services.web.command.[]: "$ "; you may need to escape any $ with another $',
      ],
    );
  });
  it('init is not cast: a substituted "true" fails the schema as Docker does', () => {
    assert.deepEqual(
      messagesOf(() => load('services: {web: {image: a, init: "${I:-true}"}}')),
      ['services.web.init must be a boolean'],
    );
  });
  it('compat mode: nested defaults, :+ and a .env file (process env wins)', () => {
    withFiles(
      {
        'docker-stack.yml':
          'services:\n  web:\n    image: "${IMG:-${BASE}:x}"\n    hostname: "${TAG:+tagged}"\n    user: "${U}"\n',
        '.env': 'BASE=alpine\nTAG=1\nU=fromfile\n',
      },
      (dir) => {
        const l = loadCompose({ files: [join(dir, 'docker-stack.yml')], env: { U: 'fromenv' }, compat: true });
        const s = l.config.services[0];
        assert.equal(s?.image, 'alpine:x');
        assert.equal(s?.hostname, 'tagged');
        assert.equal(s?.user, 'fromenv');
        // Docker's mode has no .env, no nesting and no :+ (an invalid template there).
        assert.deepEqual(
          messagesOf(() => loadCompose({ files: [join(dir, 'docker-stack.yml')], env: { U: 'fromenv', IMG: 'i' } })),
          [
            'invalid interpolation format for services.web.hostname: "${TAG:+tagged}"; you may need to escape any $ with another $',
          ],
        );
      },
    );
  });
});

describe('env_file, relative paths and ~', () => {
  it('env_file entries first, environment on top; empty values take the shell value; sorted later', () => {
    withFiles(
      {
        'stack/docker-stack.yml':
          'services:\n  web:\n    image: a\n    env_file: [a.env, sub/b.env]\n    environment:\n      B: from-yaml\n      E: ""\n      F:\n      G:\n',
        'stack/a.env': '# comment\n\n  A=1\nB=2\nC="quoted" \nD=\nSHELLONLY\nMISSING\n',
        'stack/sub/b.env': 'A=override\n',
      },
      (dir) => {
        const l = loadCompose({
          files: [join(dir, 'stack/docker-stack.yml')],
          env: { D: 'shell-d', E: 'shell-e', F: 'shell-f', SHELLONLY: 's' },
        });
        const env = Object.fromEntries(svc(l).environment);
        assert.deepEqual(env, {
          A: 'override',
          B: 'from-yaml',
          C: '"quoted" ',
          D: 'shell-d',
          SHELLONLY: 's',
          E: 'shell-e',
          F: 'shell-f',
          G: null,
        });
      },
    );
  });
  it('a missing env_file is an error at the entry, with the absolute path', () => {
    withFiles(
      { 'docker-stack.yml': 'services:\n  web:\n    image: a\n    env_file:\n      - missing.env\n' },
      (dir) => {
        assert.deepEqual(
          errorsOf(() => loadCompose({ files: [join(dir, 'docker-stack.yml')], env: {} })),
          [`5:9 open ${join(dir, 'missing.env')}: no such file or directory`],
        );
      },
    );
  });
  it("relative paths in every file resolve against the first file's directory; ~ is HOME", () => {
    withFiles(
      {
        'a/docker-stack.yml':
          'services:\n  web:\n    image: a\n    volumes: ["./data:/data", "~/cfg:/cfg:ro"]\nsecrets:\n  s: {file: ./s.txt}\n',
        'b/override.yml': 'services:\n  web:\n    volumes: ["../x:/x"]\nconfigs:\n  c: {file: c.txt}\n',
      },
      (dir) => {
        const l = loadCompose({
          files: [join(dir, 'a/docker-stack.yml'), join(dir, 'b/override.yml')],
          env: { HOME: '/home/u' },
        });
        assert.deepEqual(
          svc(l).volumes?.map((v) => [v.type, v.source, v.target, v.readOnly ?? false]),
          [
            ['bind', '/home/u/cfg', '/cfg', true],
            ['bind', join(dir, 'a/data'), '/data', false],
            ['bind', join(dir, 'x'), '/x', false],
          ],
        );
        assert.equal(l.config.secrets.get('s')?.file, join(dir, 'a/s.txt'));
        assert.equal(l.config.configs.get('c')?.file, join(dir, 'a/c.txt'));
      },
    );
  });
  it('a missing compose file is reported', () => {
    assert.deepEqual(
      messagesOf(() => loadCompose({ files: ['/nonexistent/x.yml'], env: {} })),
      ['open /nonexistent/x.yml: no such file or directory'],
    );
  });
});

describe('several files', () => {
  const two = (a: string, b: string, env: Record<string, string> = {}) =>
    loadCompose({
      files: [
        { path: '/s/a.yml', content: a },
        { path: '/s/b.yml', content: b },
      ],
      env,
    });
  it('errors in two files are all reported, each with its file', () => {
    try {
      two('services: {web: {image: a, foo: 1}}', 'services:\n  web:\n    replicas: 2\n');
      assert.fail('expected an error');
    } catch (e) {
      assert.deepEqual(
        (e as { diagnostics: { file: string; line: number; message: string }[] }).diagnostics.map(
          (d) => `${d.file}:${d.line} ${d.message}`,
        ),
        [
          '/s/a.yml:1 services.web Additional property foo is not allowed',
          '/s/b.yml:3 services.web Additional property replicas is not allowed',
        ],
      );
    }
  });
  it("every file must carry the first file's version", () => {
    assert.deepEqual(
      messagesOf(() =>
        two('version: "3.7"\nservices: {web: {image: a}}', 'version: "3.3"\nservices: {web: {image: b}}'),
      ),
      ['version mismatched between two composefiles : 3.7 and 3.3'],
    );
  });
  it("merges with Docker 28's rules", () => {
    const l = two(
      [
        'services:',
        '  web:',
        '    image: a:1',
        '    command: sleep 100',
        '    environment: {A: "1", B: "2"}',
        '    labels: {x: "1"}',
        '    ports: ["9000:90", "8000:80", "81"]',
        '    volumes: ["/a:/t1", "/b:/t2"]',
        '    cap_add: [NET_ADMIN]',
        '    dns: [1.1.1.1]',
        '    secrets: [s2, s1]',
        '    logging: {driver: json-file, options: {max-size: 1m}}',
        '    init: true',
        '    deploy:',
        '      replicas: 3',
        '      placement: {constraints: [node.role==worker]}',
        '      update_config: {parallelism: 2, delay: 10s}',
        '  db: {image: db}',
        'secrets: {s1: {file: ./a}, s2: {file: ./b}, s3: {file: ./c}}',
      ].join('\n'),
      [
        'services:',
        '  web:',
        '    image: a:2',
        '    command: ["sleep", "200"]',
        '    environment: {B: "3", C: ""}',
        '    labels: {y: "2"}',
        '    ports: ["8000:8080", "82"]',
        '    volumes: ["/c:/t1"]',
        '    cap_add: [SYS_ADMIN]',
        '    dns: [8.8.8.8]',
        '    secrets: [s3, {source: s1, target: other}]',
        '    logging: {options: {max-file: "3"}}',
        '    init: false',
        '    deploy:',
        '      replicas: 0',
        '      placement: {constraints: [node.labels.a==b]}',
        '      update_config: {parallelism: 0}',
        '  cache: {image: redis}',
        'secrets: {s1: {file: ./override}}',
      ].join('\n'),
    );
    assert.deepEqual(
      l.config.services.map((s) => s.name),
      ['cache', 'db', 'web'],
    );
    const s = svc(l);
    assert.equal(s.image, 'a:2');
    assert.deepEqual(s.command, ['sleep', '200']);
    assert.deepEqual(Object.fromEntries(s.environment), { A: '1', B: '3', C: '' });
    assert.deepEqual(s.labels, { x: '1', y: '2' });
    // Ports by published port (all unpublished collapse into the last), sorted.
    assert.deepEqual(
      s.ports?.map((p) => `${p.published}:${p.target}`),
      ['0:82', '8000:8080', '9000:90'],
    );
    assert.deepEqual(
      s.volumes?.map((v) => `${v.source}:${v.target}`),
      ['/c:/t1', '/b:/t2'],
    );
    assert.deepEqual(s.capAdd, ['NET_ADMIN', 'SYS_ADMIN']);
    assert.deepEqual(s.dns, ['1.1.1.1', '8.8.8.8']);
    assert.deepEqual(
      s.secrets?.map((r) => `${r.source}>${r.target ?? ''}`),
      ['s1>other', 's2>', 's3>'],
    );
    assert.deepEqual(s.logging, { driver: 'json-file', options: { 'max-size': '1m', 'max-file': '3' } });
    assert.equal(s.init, true, 'false never overrides (mergo zero value)');
    assert.equal(s.deploy.replicas, 0, 'a later replicas: 0 is honoured since v23');
    assert.deepEqual(s.deploy.placement.constraints, ['node.role==worker', 'node.labels.a==b']);
    assert.deepEqual(s.deploy.updateConfig, { parallelism: 0, delay: 10_000_000_000 });
    assert.ok(l.config.secrets.get('s1')?.file?.endsWith('/override'));
    assert.ok(l.config.secrets.get('s3'));
  });
  it('a different logging driver replaces the block', () => {
    const l = two(
      'services: {web: {image: a, logging: {driver: json-file, options: {a: "1"}}}}',
      'services: {web: {logging: {driver: syslog}}}',
    );
    assert.deepEqual(svc(l).logging, { driver: 'syslog' });
  });
});
