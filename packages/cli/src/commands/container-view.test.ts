import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerRecord } from '@shoal/engine';
import { formatList, parseFilters, Template } from '../format/index.js';
import {
  PS_FILTERS,
  PS_HEADERS,
  PS_TABLE,
  checkPsFilters,
  ellipsis,
  humanDuration,
  inspectJson,
  psRow,
  selectContainers,
  statusText,
} from './container-view.js';

const NOW = Date.parse('2026-11-29T12:00:00Z');
const ago = (ms: number): string => new Date(NOW - ms).toISOString();

function rec(over: Partial<ContainerRecord> & { id: string; name: string }): ContainerRecord {
  return {
    image: 'registry.test/busybox:latest',
    imageId: 'sha256:' + 'ab'.repeat(32),
    created: ago(600_000),
    process: { args: ['sleep', '1000'], env: ['PATH=/bin'], cwd: '/', user: '0:0' },
    labels: {},
    status: 'running',
    startedAt: ago(300_000),
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 10_000,
    autoRemove: false,
    limits: {},
    readOnly: false,
    binds: [],
    tmpfs: [],
    bundle: '/b',
    rootfs: '/r',
    cgroupsPath: '/c',
    logPath: '/l',
    logMaxBytes: 0,
    logMaxFiles: 0,
    ...over,
  };
}

test('humanDuration speaks as docker', () => {
  assert.equal(humanDuration(400), 'Less than a second');
  assert.equal(humanDuration(1000), '1 second');
  assert.equal(humanDuration(3000), '3 seconds');
  assert.equal(humanDuration(61_000), 'About a minute');
  assert.equal(humanDuration(5 * 60_000), '5 minutes');
  assert.equal(humanDuration(65 * 60_000), 'About an hour');
  assert.equal(humanDuration(5 * 3_600_000), '5 hours');
  assert.equal(humanDuration(3 * 86_400_000), '3 days');
  assert.equal(humanDuration(21 * 86_400_000), '3 weeks');
  assert.equal(humanDuration(90 * 86_400_000), '3 months');
  assert.equal(humanDuration(3 * 365 * 86_400_000), '3 years');
});

test('STATUS text: Up, health, Exited with code and age, Created', () => {
  const id = 'a'.repeat(64);
  assert.equal(statusText(rec({ id, name: 'a' }), NOW), 'Up 5 minutes');
  assert.equal(statusText(rec({ id, name: 'a', startedAt: ago(3000) }), NOW), 'Up 3 seconds');
  const health = (status: 'starting' | 'healthy' | 'unhealthy'): ContainerRecord =>
    rec({ id, name: 'a', startedAt: ago(3000), health: { status, failingStreak: 0, log: [] } });
  assert.equal(statusText(health('healthy'), NOW), 'Up 3 seconds (healthy)');
  assert.equal(statusText(health('unhealthy'), NOW), 'Up 3 seconds (unhealthy)');
  assert.equal(statusText(health('starting'), NOW), 'Up 3 seconds (health: starting)');
  const exited = rec({ id, name: 'a', status: 'exited', exitCode: 3, finishedAt: ago(120_000) });
  assert.equal(statusText(exited, NOW), 'Exited (3) 2 minutes ago');
  assert.equal(statusText(rec({ id, name: 'a', status: 'created', startedAt: undefined }), NOW), 'Created');
});

test('ps row: ids, quoted and truncated command, CREATED, names; --no-trunc; .Label method', () => {
  const r = rec({
    id: 'f'.repeat(64),
    name: 'web',
    labels: { tier: 'db', a: '1' },
    process: { args: ['sh', '-c', 'echo hello world; exec sleep 1000'], env: [], cwd: '/', user: '' },
    volumes: [{ name: 'averyveryverylongvolumename', target: '/data' }],
  });
  const row = psRow(r, { now: NOW, trunc: true });
  assert.equal(row.ID, 'f'.repeat(12));
  assert.equal(row.Command, '"sh -c echo hello wo…"');
  assert.equal(row.RunningFor, '10 minutes ago');
  assert.equal(row.Status, 'Up 5 minutes');
  assert.equal(row.State, 'running');
  assert.equal(row.Names, 'web');
  assert.equal(row.Labels, 'a=1,tier=db');
  assert.equal(row.Mounts, 'averyveryveryl…');
  assert.equal(row.Networks, 'none');
  assert.equal(new Template('{{.Label "tier"}}|{{.Label "nope"}}').execute(row), 'db|');
  const full = psRow(r, { now: NOW, trunc: false });
  assert.equal(full.ID, 'f'.repeat(64));
  assert.equal(full.Command, JSON.stringify('sh -c echo hello world; exec sleep 1000'));
  assert.equal(full.Mounts, 'averyveryverylongvolumename');
  // the json object has docker's keys and no method
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(row)) as object).sort(), [
    'Command',
    'CreatedAt',
    'ID',
    'Image',
    'Labels',
    'LocalVolumes',
    'Mounts',
    'Names',
    'Networks',
    'Ports',
    'RunningFor',
    'Size',
    'State',
    'Status',
  ]);
  assert.equal(ellipsis('abc', 3), 'abc');
  assert.equal(ellipsis('abcd', 3), 'ab…');
});

test('the default table has docker ps columns', () => {
  const rows = [psRow(rec({ id: '1'.repeat(64), name: 'one' }), { now: NOW, trunc: true })];
  const out = formatList(rows, undefined, { defaultTable: PS_TABLE, headers: PS_HEADERS }).split('\n');
  assert.match(out[0] ?? '', /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
  assert.match(
    out[1] ?? '',
    /^1{12}\s+registry\.test\/busybox:latest\s+"sleep 1000"\s+10 minutes ago\s+Up 5 minutes\s+one$/,
  );
});

test('filters: docker keys, values OR-ed, keys AND-ed; status and limits include stopped ones', () => {
  const a = rec({ id: 'aaa' + '0'.repeat(61), name: 'alpha', created: ago(300_000), labels: { tier: 'web' } });
  const b = rec({
    id: 'bbb' + '0'.repeat(61),
    name: 'beta',
    created: ago(200_000),
    status: 'exited',
    exitCode: 3,
    finishedAt: ago(1000),
    labels: { tier: 'db' },
    volumes: [{ name: 'data', target: '/var/lib' }],
  });
  const c = rec({
    id: 'ccc' + '0'.repeat(61),
    name: 'gamma',
    created: ago(100_000),
    status: 'created',
    image: 'other:1',
    imageId: 'sha256:' + 'cd'.repeat(32),
    health: { status: 'healthy', failingStreak: 0, log: [] },
  });
  const all = [a, b, c];
  const names = (filters: string[], opts: { all?: boolean; last?: number } = { all: true }): string[] =>
    selectContainers(all, parseFilters(filters, PS_FILTERS), opts).map((r) => r.name);
  assert.deepEqual(names([], {}), ['alpha'], 'running only by default');
  assert.deepEqual(names([]), ['gamma', 'beta', 'alpha'], 'newest first');
  assert.deepEqual(names([], { last: 2 }), ['gamma', 'beta'], '-n includes all states');
  assert.deepEqual(names(['status=exited'], {}), ['beta'], 'a status filter includes stopped ones');
  assert.deepEqual(names(['status=exited', 'status=created']), ['gamma', 'beta']);
  assert.deepEqual(names(['name=alp']), ['alpha']);
  assert.deepEqual(names(['name=^/beta$']), ['beta']);
  assert.deepEqual(names(['id=bbb']), ['beta']);
  assert.deepEqual(names(['label=tier']), ['beta', 'alpha']);
  assert.deepEqual(names(['label=tier=db']), ['beta']);
  assert.deepEqual(names(['label=tier', 'status=running']), ['alpha'], 'keys AND-ed');
  assert.deepEqual(names(['exited=3']), ['beta']);
  assert.deepEqual(names(['exited=0']), []);
  assert.deepEqual(names(['ancestor=other:1']), ['gamma']);
  assert.deepEqual(names(['ancestor=cdcdcd']), ['gamma'], 'an image id prefix');
  assert.deepEqual(names(['ancestor=registry.test/busybox']), ['beta', 'alpha'], ':latest implied');
  assert.deepEqual(names(['health=healthy']), ['gamma']);
  assert.deepEqual(names(['health=none']), ['beta', 'alpha']);
  assert.deepEqual(names(['before=gamma']), ['beta', 'alpha']);
  assert.deepEqual(names(['since=alpha']), ['gamma', 'beta']);
  assert.deepEqual(names(['volume=data']), ['beta']);
  assert.deepEqual(names(['volume=/var/lib']), ['beta']);
  assert.deepEqual(names(['network=none']), ['gamma', 'beta', 'alpha']);
  assert.deepEqual(names(['network=host']), []);
  assert.throws(() => names(['since=nope']), /no such container: nope/);
});

test('bad filters: docker error text, checked before anything is opened', () => {
  assert.throws(() => parseFilters(['colour=red'], PS_FILTERS), /invalid filter 'colour'/);
  assert.throws(() => parseFilters(['name'], PS_FILTERS), /bad format of filter \(expected name=value\): name/);
  assert.throws(
    () => checkPsFilters(parseFilters(['status=sleeping'], PS_FILTERS)),
    /invalid filter 'status=sleeping'/,
  );
  assert.throws(() => checkPsFilters(parseFilters(['health=great'], PS_FILTERS)), /invalid filter 'health=great'/);
  assert.throws(() => checkPsFilters(parseFilters(['exited=x'], PS_FILTERS)), /invalid filter 'exited=x'/);
  checkPsFilters(parseFilters(['status=paused', 'health=none', 'exited=137'], PS_FILTERS));
});

test('inspect: docker JSON shape', () => {
  const r = rec({
    id: 'e'.repeat(64),
    name: 'db',
    status: 'exited',
    exitCode: 137,
    pid: 42,
    finishedAt: ago(1000),
    labels: { k: 'v' },
    restartPolicy: { name: 'on-failure', maximumRetryCount: 3 },
    restartCount: 2,
    limits: { memoryBytes: 1024, cpus: 0.5 },
    process: { args: ['/entry', 'run', 'x'], env: ['A=1'], cwd: '/w', user: '1000' },
    createOptions: { image: 'busybox', entrypoint: ['/entry'] },
    binds: [{ source: '/host', target: '/ctr', readOnly: true }],
    volumes: [{ name: 'v1', target: '/data' }],
    network: { mode: 'host', hostname: 'dbhost', extraHosts: [], dns: [], dnsSearch: [], dnsOptions: [] },
  });
  const j = inspectJson(r, { volumeSource: (n) => `/vol/${n}/_data` });
  assert.equal(j['Id'], r.id);
  assert.equal(j['Name'], '/db');
  assert.equal(j['Path'], '/entry');
  assert.deepEqual(j['Args'], ['run', 'x']);
  assert.equal(j['Image'], r.imageId);
  assert.equal(j['RestartCount'], 2);
  assert.deepEqual(j['State'], {
    Status: 'exited',
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 137,
    Error: '',
    StartedAt: r.startedAt,
    FinishedAt: r.finishedAt,
  });
  const hc = j['HostConfig'] as Record<string, unknown>;
  assert.deepEqual(hc['RestartPolicy'], { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.equal(hc['Memory'], 1024);
  assert.equal(hc['NanoCpus'], 500_000_000);
  assert.equal(hc['NetworkMode'], 'host');
  const cfg = j['Config'] as Record<string, unknown>;
  assert.deepEqual(cfg['Entrypoint'], ['/entry']);
  assert.deepEqual(cfg['Cmd'], ['run', 'x']);
  assert.equal(cfg['Hostname'], 'dbhost');
  assert.deepEqual(cfg['Env'], ['A=1']);
  assert.equal(cfg['Image'], r.image);
  assert.equal(cfg['WorkingDir'], '/w');
  assert.equal(cfg['User'], '1000');
  assert.deepEqual(cfg['Labels'], { k: 'v' });
  assert.deepEqual(
    (j['Mounts'] as { Type: string; Source: string; Destination: string; RW: boolean }[]).map((m) => [
      m.Type,
      m.Source,
      m.Destination,
      m.RW,
    ]),
    [
      ['volume', '/vol/v1/_data', '/data', true],
      ['bind', '/host', '/ctr', false],
    ],
  );
  assert.equal(new Template('{{.State.ExitCode}} {{.Name}}').execute(j), '137 /db');
  // the split of argv into Entrypoint and Cmd comes from the image when run overrode neither
  const plain = rec({ id: 'e'.repeat(64), name: 'p', process: { args: ['/ep', 'a'], env: [], cwd: '/', user: '' } });
  const pj = inspectJson(plain, { imageConfig: { Entrypoint: ['/ep'] } }) as {
    Config: { Entrypoint: unknown; Cmd: unknown };
  };
  assert.deepEqual([pj.Config.Entrypoint, pj.Config.Cmd], [['/ep'], ['a']]);
  const state = (
    inspectJson(rec({ id: 'e'.repeat(64), name: 'r', pid: 7 })) as { State: { Running: boolean; Pid: number } }
  ).State;
  assert.deepEqual([state.Running, state.Pid], [true, 7]);
});
