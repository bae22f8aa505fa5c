/**
 * `service inspect`, `secret inspect` and `config inspect` against real Docker's: for each case of
 * the parity corpus with an `inspect-golden.json` (test/compose-parity/inspect-golden.mjs, from
 * record.sh's raw answers of Docker 20.10.24 driven by CLI 28), the specs the CLI sends are
 * deployed with DeployStack on a real store, read back as `shoal <kind> inspect` reads them
 * (GetService with InsertDefaults, over the wire encoding), printed with api's inspectJson, and
 * compared with what Docker printed, field by field: the daemon-side defaults included
 * (StopGracePeriod, DNSConfig, Isolation, RestartPolicy, Update/RollbackConfig, ForceUpdate,
 * Runtime, EndpointSpec and Endpoint.Spec mode vip, port protocol and publish mode).
 *
 * Only what cannot be the same is left out, on both sides: IDs, versions, timestamps, the VIPs'
 * addresses (taken from pools), network IDs (replaced by names), secret and config IDs in
 * references, and fields Go prints as null (nil pointers and maps: Shoal has no such field).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Config,
  DeployStackRequest,
  inspectJson,
  Secret,
  Service,
  type ConfigSpec,
  type InspectKind,
  type NetworkSpec,
  type SecretSpec,
  type ServiceSpec,
} from '@shoal/api';
import { servicesRig } from '../orchestrator/test-rig.js';
import type { StoredNetwork } from '../services/objects.js';

const CORPUS = fileURLToPath(new URL('../../../../test/compose-parity/', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

interface Golden {
  stack: string;
  /** External objects record.sh made before deploying (secrets and configs hold `external`). */
  setup: { networks?: string[]; secrets?: string[]; configs?: string[] };
  sent: {
    externalNetworks: string[];
    externalSecrets: string[];
    externalConfigs: string[];
    networks: NetworkSpec[];
    secrets: JsonObject[];
    configs: JsonObject[];
    services: ServiceSpec[];
  };
  docker: {
    networkNames: Record<string, string>;
    services: JsonObject[];
    secrets: JsonObject[];
    configs: JsonObject[];
  };
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Go's null (nil pointers and maps) dropped. */
function pruneNull(v: Json): Json {
  if (Array.isArray(v)) return v.map(pruneNull);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = pruneNull(x);
  return out;
}

/** What cannot be equal dropped; network IDs replaced by names (`names`). */
function normalise(obj: JsonObject, names: (id: string) => string): JsonObject {
  const o = pruneNull(structuredClone(obj)) as JsonObject;
  for (const k of ['ID', 'Version', 'CreatedAt', 'UpdatedAt']) delete o[k];
  const spec = o['Spec'];
  const tt = isObject(spec) ? spec['TaskTemplate'] : undefined;
  if (isObject(tt)) {
    for (const n of Array.isArray(tt['Networks']) ? tt['Networks'] : [])
      if (isObject(n) && typeof n['Target'] === 'string') n['Target'] = names(n['Target']);
    const c = tt['ContainerSpec'];
    if (isObject(c)) {
      for (const r of Array.isArray(c['Secrets']) ? c['Secrets'] : []) if (isObject(r)) delete r['SecretID'];
      for (const r of Array.isArray(c['Configs']) ? c['Configs'] : []) if (isObject(r)) delete r['ConfigID'];
    }
  }
  const ep = o['Endpoint'];
  if (isObject(ep) && Array.isArray(ep['VirtualIPs']))
    ep['VirtualIPs'] = ep['VirtualIPs'].map((v) => (isObject(v) ? { NetworkID: names(text(v['NetworkID'])) } : v));
  return o;
}

/** The differences, one line each: `path: Docker …, Shoal …`. */
function diff(want: Json | undefined, got: Json | undefined, path: string): string[] {
  if (isObject(want) && isObject(got)) {
    const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])];
    return keys.flatMap((k) => diff(want[k], got[k], `${path}.${k}`));
  }
  if (Array.isArray(want) && Array.isArray(got) && want.length === got.length)
    return want.flatMap((x, i) => diff(x, got[i], `${path}[${i}]`));
  return JSON.stringify(want) === JSON.stringify(got)
    ? []
    : [`${path}: Docker ${JSON.stringify(want)}, Shoal ${JSON.stringify(got)}`];
}

/** Key order as Docker prints it, checked too (Docker's follows its Go structs). */
function keyPaths(v: Json, path = ''): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => keyPaths(x, `${path}[${i}]`));
  if (!isObject(v)) return [];
  return Object.keys(v).flatMap((k) => [`${path}.${k}`, ...keyPaths(v[k] as Json, `${path}.${k}`)]);
}

/** A JSON value known to be a string, as text. */
const text = (v: Json | undefined): string => (typeof v === 'string' ? v : JSON.stringify(v));
/** The `Spec.Name` of an inspected object. */
const specName = (o: JsonObject): string => text(isObject(o['Spec']) ? o['Spec']['Name'] : undefined);

const bytes = (s: Json | undefined): Uint8Array => Buffer.from(typeof s === 'string' ? s : '', 'base64');

const cases = existsSync(CORPUS)
  ? readdirSync(CORPUS).filter((d) => existsSync(join(CORPUS, d, 'inspect-golden.json')))
  : [];

test('the corpus has inspect goldens', () => {
  assert.ok(cases.length >= 3, `inspect goldens in ${CORPUS}: ${cases.join(', ')}`);
});

for (const name of cases) {
  test(`inspect output as Docker's: ${name}`, async (t) => {
    const g = JSON.parse(readFileSync(join(CORPUS, name, 'inspect-golden.json'), 'utf8')) as Golden;
    const r = await servicesRig(['w1'], { defaultAddrPool: ['198.19.128.0/17'], subnetSize: 24, ingress: true });
    t.after(() => r.close());
    r.manager.allocator.start();
    for (const n of g.setup.networks ?? [])
      await r.manager.networksApi.createNetwork({ Spec: { Name: n, DriverConfiguration: { Name: 'overlay' } } });
    for (const n of g.setup.secrets ?? [])
      await r.manager.secretsConfigs.createSecret({ Spec: { Name: n, Data: Buffer.from('external') } });
    for (const n of g.setup.configs ?? [])
      await r.manager.secretsConfigs.createConfig({ Spec: { Name: n, Data: Buffer.from('external') } });
    const data = <S extends SecretSpec | ConfigSpec>(s: JsonObject): S =>
      ({ ...s, ...(s['Data'] !== undefined ? { Data: bytes(s['Data']) } : {}) }) as S;
    // What the CLI sends, through the wire encoding, as the daemon receives it.
    const req = DeployStackRequest.decode(
      DeployStackRequest.encode({
        Namespace: g.stack,
        ExternalNetworks: g.sent.externalNetworks,
        ExternalSecrets: g.sent.externalSecrets,
        ExternalConfigs: g.sent.externalConfigs,
        Networks: g.sent.networks,
        Secrets: g.sent.secrets.map((s) => data<SecretSpec>(s)),
        Configs: g.sent.configs.map((s) => data<ConfigSpec>(s)),
        Services: g.sent.services,
      }).finish(),
    );
    await r.manager.stacksApi.deploy(req);
    await r.quiet();
    const shoalNames = (id: string): string =>
      r.store.get<StoredNetwork>('network', id)?.Spec?.Name ?? `unknown network ${id}`;
    const dockerNames = (id: string): string => g.docker.networkNames[id] ?? `unknown network ${id}`;
    const problems: string[] = [];
    const compare = (kind: InspectKind, docker: JsonObject, shoal: Record<string, unknown>): void => {
      const want = normalise(docker, dockerNames);
      const got = normalise(JSON.parse(JSON.stringify(shoal)) as JsonObject, shoalNames);
      const what = `${kind} ${specName(docker)}`;
      problems.push(...diff(want, got, what));
      if (problems.length === 0) assert.deepEqual(keyPaths(got), keyPaths(want), `${what}: Docker's key order`);
    };
    const sv = r.manager.servicesApi;
    for (const d of g.docker.services) {
      const s = sv.getService(specName(d), true);
      compare('service', d, inspectJson('service', Service.decode(Service.encode(s).finish())));
    }
    const sc = r.manager.secretsConfigs;
    for (const d of g.docker.secrets) {
      const s = Secret.decode(Secret.encode(sc.getSecret(specName(d))).finish());
      if (s.Spec) delete s.Spec.Data; // `secret inspect` never prints the data
      compare('secret', d, inspectJson('secret', s));
    }
    for (const d of g.docker.configs) {
      const c = Config.decode(Config.encode(sc.getConfig(specName(d))).finish());
      compare('config', d, inspectJson('config', c));
    }
    assert.deepEqual(problems, [], `${name}: ${problems.length} differences from Docker`);
  });
}
