// The parity corpus (test/compose-parity/*/case.json): each case's files through prepareStack,
// compared with the outcome Docker CLI 28 gives: the summary in case.json (from compose.md and
// Docker's source), and, where test/compose-parity/record.sh recorded one, golden.json: what a
// real Docker swarm answered and created, compared field by field after the same normalisation.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ServiceSpec } from '@shoal/api';
import { ComposeError } from './errors.js';
import { prepareStack, type PreparedStack } from './stack.js';
import { diffJson, relativeTo, shoalObjects, type Golden } from './test/parity-normalise.js';

const CORPUS = fileURLToPath(new URL('../../../test/compose-parity/', import.meta.url));

interface Case {
  description: string;
  stack: string;
  files: string[];
  env?: Record<string, string>;
  expect: 'accept' | 'reject';
  errors?: string[];
  warnings?: string[];
  /** External objects record.sh creates before deploying (Shoal's test does not need them). */
  setup?: { networks?: string[]; secrets?: string[]; configs?: string[] };
  /**
   * Differences from golden.json that are Docker's and not Shoal's to match, each with the
   * reason: key = the difference's path as the test prints it (e.g. `services.x_web.…`),
   * or `decision` / `stderr`.
   */
  knownDifferences?: Record<string, string>;
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
        if (c.knownDifferences?.['decision']) return;
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

/**
 * Docker's error as lines to find in Shoal's diagnostics: without its warnings, without the
 * headers Shoal repeats per diagnostic ("Compose file contains unsupported options:", "yaml:
 * unmarshal errors:"), the YAML line number (Shoal gives file:line:column), object IDs (Shoal
 * checks before anything has one) and the wrapping of an
 * error the daemon returned (Shoal finds those before creating anything: "service web: …").
 */
function dockerErrorLines(stderr: string[]): string[] {
  return stderr
    .filter((l) => !l.startsWith('Ignoring unsupported options:') && !l.endsWith(':'))
    .map((l) =>
      l
        .trim()
        .replace(/^line \d+: /, '')
        .replace(/ \(<id>\)/g, '')
        .replace(/^failed to create service [^:]+: Error response from daemon: (rpc error: code = \w+ desc = )?/, ''),
    );
}

/** Every difference between Docker's recorded answer and Shoal's, one line each. */
function goldenDiffs(dir: string, c: Case, g: Golden): string[] {
  const r = run(dir, c);
  if (g.result === 'reject') {
    if (r.ok) return [`decision: Docker rejects (${g.stderr.join(' | ')}), Shoal accepts`];
    // Docker prints one error; Shoal reports every error, each with its position
    const errors = relativeTo(r.errors, dir);
    const missing = dockerErrorLines(g.stderr).filter((l) => !errors.some((e) => e.includes(l)));
    return missing.length
      ? [`stderr: Docker's error ${JSON.stringify(missing)} is not among Shoal's ${JSON.stringify(errors)}`]
      : [];
  }
  if (!r.ok) return [`decision: Docker accepts, Shoal rejects: ${r.errors.join(' | ')}`];
  const got = relativeTo(shoalObjects(r.p.specs), dir);
  const want = { networks: g.networks, secrets: g.secrets, configs: g.configs, services: g.services };
  const diffs = diffJson(want, got);
  // Docker's stderr on an accepted file is its warnings
  // (line by line: Shoal keeps a multi-line warning as one)
  const warnings = r.p.warnings.flatMap((w) => w.message.split('\n')).filter((l) => l !== '');
  const missing = g.stderr.filter((l) => !warnings.includes(l));
  const extra = warnings.filter((w) => !g.stderr.includes(w));
  if (missing.length || extra.length)
    diffs.push(`stderr: Docker ${JSON.stringify(g.stderr)}, Shoal warnings ${JSON.stringify(warnings)}`);
  return diffs;
}

function leafCount(v: unknown): number {
  if (v && typeof v === 'object') return Object.values(v).reduce((n: number, x) => n + leafCount(x), 0);
  return 1;
}

describe('compose parity against goldens recorded from a real Docker swarm', () => {
  const withGolden = cases.filter((n) => existsSync(join(CORPUS, n, 'golden.json')));
  const tally = { cases: 0, matched: 0, fields: 0, fieldsDiffering: 0, known: 0 };
  it('has goldens for at least 25 cases', () => {
    assert.ok(withGolden.length >= 25, `only ${withGolden.length} goldens`);
  });
  for (const name of withGolden) {
    it(`${name} (golden.json)`, () => {
      const dir = join(CORPUS, name);
      const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Case;
      const g = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden;
      const known = c.knownDifferences ?? {};
      const all = goldenDiffs(dir, c, g);
      const diffs = all.filter((d) => !Object.keys(known).some((k) => d === k || d.startsWith(`${k}:`)));
      tally.cases++;
      tally.fields += leafCount(g.services) + leafCount(g.networks) + leafCount(g.secrets) + leafCount(g.configs);
      tally.fieldsDiffering += all.length;
      tally.known += all.length - diffs.length;
      if (all.length === 0) tally.matched++;
      assert.equal(c.expect, g.result, `${name}: case.json expects ${c.expect}, Docker ${g.cli} answered ${g.result}`);
      assert.deepEqual(
        diffs,
        [],
        `${name}: Shoal differs from Docker ${g.cli} (daemon ${g.daemon}):\n${diffs.join('\n')}`,
      );
    });
  }
  it('reports where Docker CLI 20.10 answered differently (golden-cli20.json, compose.md §13)', (t) => {
    const differ = withGolden.filter((n) => {
      const file = join(CORPUS, n, 'golden-cli20.json');
      if (!existsSync(file)) return false;
      const a = JSON.parse(readFileSync(join(CORPUS, n, 'golden.json'), 'utf8')) as Golden;
      const b = JSON.parse(readFileSync(file, 'utf8')) as Golden;
      const { cli: _a, daemon: _b, ...x } = a;
      const { cli: _c, daemon: _d, ...y } = b;
      return JSON.stringify(x) !== JSON.stringify(y);
    });
    t.diagnostic(`CLI 20.10 differs from CLI 28 in ${differ.length} cases: ${differ.join(', ')}`);
    assert.ok(differ.length < withGolden.length);
  });
  it('reports the match rate', (t) => {
    const rate = tally.cases ? tally.matched / tally.cases : 0;
    t.diagnostic(
      `parity: ${tally.matched}/${tally.cases} cases identical to Docker (${(rate * 100).toFixed(1)}%), ` +
        `${tally.fieldsDiffering} differing fields of ${tally.fields}, ${tally.known} of them listed as Docker's`,
    );
    assert.equal(tally.cases, withGolden.length);
  });
});
