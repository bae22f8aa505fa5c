import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Template, TemplateError, checkFormat, formatInspect, formatList, parseFilters, matchLabels } from './index.js';

const node = {
  ID: 'abc123',
  Hostname: 'h1',
  State: 'ready',
  Leader: true,
  Names: ['a', 'b'],
  Spec: { Labels: { zone: 'x', 'com.docker.stack.namespace': 'app' }, Role: 'manager' },
  Count: 3,
};

const run = (src: string, v: unknown = node): string => new Template(src).execute(v);

test('fields, nested fields, missing fields and Go value printing', () => {
  assert.equal(run('{{.Hostname}}'), 'h1');
  assert.equal(run('{{.ID}}\t{{.Hostname}}'), 'abc123\th1');
  assert.equal(run('{{.Spec.Role}}'), 'manager');
  assert.equal(run('{{.Spec.Labels}}'), 'map[com.docker.stack.namespace:app zone:x]');
  assert.equal(run('{{.Names}}'), '[a b]');
  assert.equal(run('{{.Missing}}'), '<no value>');
  assert.equal(run('{{.Spec.Missing.Deeper}}'), '<no value>');
  assert.equal(run('{{.Count}} {{.Leader}}'), '3 true');
  assert.equal(run('{{$.Hostname}}'), 'h1');
});

test('functions, pipes and arguments', () => {
  assert.equal(run('{{json .Spec.Labels}}'), '{"zone":"x","com.docker.stack.namespace":"app"}');
  assert.equal(run('{{json .}}'), JSON.stringify(node));
  assert.equal(run('{{.Spec.Labels | json}}'), JSON.stringify(node.Spec.Labels));
  assert.equal(run('{{index .Spec.Labels "com.docker.stack.namespace"}}'), 'app');
  assert.equal(run('{{join .Names ", "}}'), 'a, b');
  assert.equal(run('{{.Hostname | upper}}'), 'H1');
  assert.equal(run('{{lower "ABC"}}'), 'abc');
  assert.equal(run('{{len .Names}}'), '2');
  assert.equal(run('{{printf "%s-%d" .Hostname .Count}}'), 'h1-3');
  assert.equal(run('{{truncate .ID 3}}'), 'abc');
  assert.equal(run('{{split "a:b" ":"}}'), '[a b]');
  assert.equal(run('{{(index .Names 1) | upper}}'), 'B');
});

test('a field holding a function is a method: called with its arguments, as Go calls methods', () => {
  const item = { Label: (k: string): string => ({ tier: 'db' })[k] ?? '', Name: 'x' };
  assert.equal(new Template('{{.Label "tier"}}|{{.Label "none"}}|{{"tier" | .Label}}').execute(item), 'db||db');
  assert.throws(() => new Template('{{.Name "arg"}}').execute(item), /can't give argument to non-function/);
});

test('if, else if, with, range and trim markers', () => {
  assert.equal(run('{{if .Leader}}Leader{{else}}Reachable{{end}}'), 'Leader');
  assert.equal(run('{{if .Missing}}yes{{else}}no{{end}}'), 'no');
  const chain = '{{if eq .State "down"}}D{{else if eq .State "ready"}}R{{else}}?{{end}}!';
  assert.equal(run(chain), 'R!');
  assert.equal(run(chain, { State: 'down' }), 'D!');
  assert.equal(run(chain, { State: 'x' }), '?!');
  assert.equal(run('{{with .Spec}}{{.Role}}{{end}}'), 'manager');
  assert.equal(run('{{with .Missing}}x{{else}}none{{end}}'), 'none');
  assert.equal(run('{{range .Names}}<{{.}}>{{end}}'), '<a><b>');
  assert.equal(run('{{range .Empty}}x{{else}}empty{{end}}'), 'empty');
  assert.equal(run('{{range $.Names}}{{$.Hostname}}{{end}}'), 'h1h1');
  assert.equal(run('a  {{- .Hostname -}}  b'), 'ah1b');
  assert.equal(run('{{if and .Leader (eq .Count 3)}}both{{end}}'), 'both');
  assert.equal(run('{{if not .Leader}}x{{else}}y{{end}}'), 'y');
});

test('bad templates fail before anything runs, saying what is wrong', () => {
  assert.throws(
    () => checkFormat('{{.Name'),
    (e: unknown) => e instanceof TemplateError && /unclosed action/.test(e.message),
  );
  assert.throws(() => checkFormat('{{foo .X}}'), /function "foo" not defined/);
  assert.throws(() => checkFormat('{{if .X}}y'), /unexpected EOF/);
  assert.throws(() => checkFormat('{{end}}'), /unexpected \{\{end\}\}/);
  assert.throws(() => checkFormat('table {{.ID'), TemplateError);
  assert.doesNotThrow(() => checkFormat('table {{.ID}}\t{{.Name}}'));
});

test('lists: default table, custom table with derived headers, json lines, template, quiet', () => {
  const items = [
    { ID: 'n1', Hostname: 'host-one', ManagerStatus: 'Leader' },
    { ID: 'n2', Hostname: 'h2', ManagerStatus: '' },
  ];
  const opts = {
    defaultTable: '{{.ID}}\t{{.Hostname}}\t{{.ManagerStatus}}',
    headers: { ID: 'ID', Hostname: 'HOSTNAME', ManagerStatus: 'MANAGER STATUS' },
  };
  // Go's tabwriter as docker sets it: a column is its widest cell plus 3, at least 10.
  assert.equal(
    formatList(items, undefined, opts),
    ['ID        HOSTNAME   MANAGER STATUS', 'n1        host-one   Leader', 'n2        h2         ', ''].join('\n'),
  );
  assert.equal(
    formatList(items, 'table {{.Hostname}}\\t{{.ID}}', opts),
    ['HOSTNAME   ID', 'host-one   n1', 'h2         n2', ''].join('\n'),
  );
  // A field without a declared header gets docker's derived one.
  assert.equal(formatList([{ EngineVersion: '1' }], 'table {{.EngineVersion}}', opts), 'ENGINE VERSION\n1\n');
  assert.equal(formatList(items, 'json', opts), items.map((i) => JSON.stringify(i)).join('\n') + '\n');
  assert.equal(formatList(items, '{{.ID}}: {{.Hostname}}', opts), 'n1: host-one\nn2: h2\n');
  assert.equal(formatList(items, undefined, { ...opts, quiet: true }), 'n1\nn2\n');
  assert.equal(formatList([], '{{.ID}}', opts), '');
});

test('inspect: indented JSON array by default, or a template per object', () => {
  const objs = [{ ID: 'a', Spec: { Name: 'web' } }];
  assert.equal(formatInspect(objs, undefined), JSON.stringify(objs, null, 4) + '\n');
  assert.equal(formatInspect(objs, '{{.Spec.Name}}'), 'web\n');
  assert.equal(formatInspect(objs, '{{json .Spec}}'), '{"Name":"web"}\n');
});

test('filters: accepted keys, repeated values, label matching', () => {
  const f = parseFilters(['role=manager', 'label=zone=x', 'label=ssd', 'role=worker'], ['role', 'label', 'name']);
  assert.deepEqual(f.get('role'), ['manager', 'worker']);
  assert.throws(() => parseFilters(['colour=red'], ['role']), /invalid filter 'colour'/);
  assert.throws(() => parseFilters(['role'], ['role']), /expected name=value/);
  assert.equal(matchLabels({ zone: 'x', ssd: '' }, ['zone=x', 'ssd']), true);
  assert.equal(matchLabels({ zone: 'y' }, ['zone=x']), false);
  assert.equal(matchLabels(undefined, ['ssd']), false);
});
