// The parity corpus (test/compose-parity/*/case.json): each case's files through prepareStack,
// compared with the outcome Docker CLI 28 gives as far as shared/research/compose.md and Docker's
// source determine it. Goldens recorded from a real Docker swarm are a later step (see the README).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ServiceSpec } from '@shoal/api';
import { ComposeError } from './errors.js';
import { prepareStack, type PreparedStack } from './stack.js';

const CORPUS = fileURLToPath(new URL('../../../test/compose-parity/', import.meta.url));

interface Case {
  description: string;
  stack: string;
  files: string[];
  env?: Record<string, string>;
  expect: 'accept' | 'reject';
  errors?: string[];
  warnings?: string[];
  summary?: {
    networks: string[];
    externalNetworks?: string[];
    secrets: string[];
    externalSecrets?: string[];
    configs: string[];
    services: Record<string, Record<string, unknown>>;
  };
}

function mode(s: ServiceSpec): string {
  const m = s.Mode ?? {};
  if (m.Global) return 'global';
  if (m.GlobalJob) return 'global-job';
  if (m.ReplicatedJob) return 'replicated-job';
  const r = m.Replicated?.Replicas;
  return r === undefined ? 'replicated' : `replicated:${r}`;
}

/** The fields a case may check, for one service. */
function serviceSummary(s: ServiceSpec): Record<string, unknown> {
  const c = s.TaskTemplate?.ContainerSpec ?? {};
  return {
    image: c.Image,
    mode: mode(s),
    ports: (s.EndpointSpec?.Ports ?? []).map(
      (p) => `${p.PublishedPort ?? 0}:${p.TargetPort ?? 0}/${p.Protocol ?? ''}/${p.PublishMode ?? ''}`,
    ),
    networks: (s.TaskTemplate?.Networks ?? []).map((n) => n.Target),
    hostname: c.Hostname,
    user: c.User,
    dir: c.Dir,
    env: c.Env ?? [],
    args: c.Args,
    mounts: (c.Mounts ?? []).map((m) => `${m.Type ?? ''}:${m.Source ?? ''}:${m.Target ?? ''}`),
    constraints: s.TaskTemplate?.Placement?.Constraints ?? [],
    secrets: (c.Secrets ?? []).map(
      (r) =>
        `${r.SecretName ?? ''}:${r.File?.Name ?? ''}:${r.File?.UID ?? ''}:${r.File?.GID ?? ''}:${r.File?.Mode ?? ''}`,
    ),
    restart: s.TaskTemplate?.RestartPolicy?.Condition,
    nanoCPUs: s.TaskTemplate?.Resources?.Limits?.NanoCPUs,
  };
}

function run(dir: string, c: Case): { ok: true; p: PreparedStack } | { ok: false; errors: string[] } {
  try {
    return {
      ok: true,
      p: prepareStack(c.stack, { files: c.files.map((f) => join(dir, f)), env: c.env ?? {} }),
    };
  } catch (e) {
    if (!(e instanceof ComposeError)) throw e;
    return {
      ok: false,
      errors: e.diagnostics.map((d) => `${d.file ? relative(dir, d.file) : ''}:${d.line}:${d.column}: ${d.message}`),
    };
  }
}

const cases = existsSync(CORPUS)
  ? readdirSync(CORPUS, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(CORPUS, d.name, 'case.json')))
      .map((d) => d.name)
      .sort()
  : [];

describe('compose parity corpus', () => {
  it('has at least 20 cases', () => {
    assert.ok(cases.length >= 20, `only ${cases.length} cases`);
  });
  for (const name of cases) {
    it(name, () => {
      const dir = join(CORPUS, name);
      const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Case;
      const r = run(dir, c);
      if (c.expect === 'reject') {
        assert.equal(r.ok, false, `${name}: Docker rejects this file`);
        if (!r.ok && c.errors) assert.deepEqual(r.errors, c.errors);
        return;
      }
      if (!r.ok) assert.fail(`${name}: Docker accepts this file, Shoal said:\n${r.errors.join('\n')}`);
      const { specs, warnings } = r.p;
      if (c.warnings)
        assert.deepEqual(
          warnings.map((w) => w.message),
          c.warnings,
        );
      const want = c.summary;
      if (!want) return;
      assert.deepEqual(
        specs.networks.map((n) => n.Name),
        want.networks,
      );
      assert.deepEqual(
        specs.secrets.map((s) => s.Name),
        want.secrets,
      );
      assert.deepEqual(
        specs.configs.map((s) => s.Name),
        want.configs,
      );
      if (want.externalNetworks) assert.deepEqual(specs.externalNetworks, want.externalNetworks);
      if (want.externalSecrets) assert.deepEqual(specs.externalSecrets, want.externalSecrets);
      assert.deepEqual(
        specs.services.map((s) => s.Name),
        Object.keys(want.services).sort(),
      );
      for (const s of specs.services) {
        const got = serviceSummary(s);
        const expected: Record<string, unknown> = want.services[s.Name ?? ''] ?? {};
        const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, got[k]]));
        assert.deepEqual(picked, expected, s.Name);
      }
    });
  }
});
