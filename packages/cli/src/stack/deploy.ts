/**
 * `shoal stack deploy`: the files loaded, validated and converted here (nothing is sent when
 * they are rejected), images resolved as `--resolve-image` says, then one DeployStack call:
 * the leader writes the whole stack in one transaction or nothing. Output as Docker's
 * ("Creating network app_default", "Updating service app_web (id: ...)"); `--dry-run` prints
 * the plan with a diff per updated object.
 */
import type { DeployStackResponse, Service, StackChange } from '@shoal/api';
import { ComposeError, LABEL_NAMESPACE, prepareStack, type Diagnostic, type PreparedStack } from '@shoal/compose';
import type { DaemonClient } from '../daemon/client.js';
import { waitOnService } from '../service/progress.js';
import { registryAuthFor } from '../service/registry-auth.js';
import { composeFiles, loadOrReport, printWarnings } from './load.js';
import { parseResolveImage, registryDigests, resolveImages, type DigestLookup } from './resolve-image.js';

export interface DeployFlags {
  composeFile: string[];
  prune?: boolean;
  dryRun?: boolean;
  resolveImage: string;
  withRegistryAuth?: boolean;
  detach: boolean;
  quiet?: boolean;
  compat?: boolean;
}

/**
 * External networks, secrets and configs the cluster does not have, as Compose diagnostics at
 * the place the file declares them (the leader checks again when it writes).
 */
export async function missingExternals(c: DaemonClient, prepared: PreparedStack): Promise<Diagnostic[]> {
  const { specs, loaded } = prepared;
  const out: Diagnostic[] = [];
  const check = (
    kind: 'network' | 'secret' | 'config',
    section: 'networks' | 'secrets' | 'configs',
    wanted: readonly string[],
    have: readonly (string | undefined)[],
    hint: string,
  ): void => {
    const names = new Set(have);
    for (const name of wanted) {
      if (names.has(name) || (kind === 'network' && ['host', 'bridge', 'none', 'default'].includes(name))) continue;
      const defs = loaded.config[section] as Map<string, { name?: string; external: { name?: string } }>;
      const key = [...defs].find(([k, d]) => (d.name ?? d.external.name ?? k) === name)?.[0] ?? name;
      const pos = loaded.locate([section, key, 'external']);
      out.push({
        ...pos,
        path: `${section}.${key}`,
        message: `${kind} "${name}" is declared as external, but could not be found${hint}`,
      });
    }
  };
  if (specs.externalNetworks.length > 0) {
    const nets = (await c.control.listNetworks({})).Networks ?? [];
    check(
      'network',
      'networks',
      specs.externalNetworks,
      nets.map((n) => n.Spec?.Name),
      '. You need to create a swarm-scoped network before the stack is deployed',
    );
  }
  if (specs.externalSecrets.length > 0) {
    const secrets = (await c.control.listSecrets({})).Secrets ?? [];
    check(
      'secret',
      'secrets',
      specs.externalSecrets,
      secrets.map((s) => s.Spec?.Name),
      ': create it before the stack is deployed',
    );
  }
  if (specs.externalConfigs.length > 0) {
    const configs = (await c.control.listConfigs({})).Configs ?? [];
    check(
      'config',
      'configs',
      specs.externalConfigs,
      configs.map((s) => s.Spec?.Name),
      ': create it before the stack is deployed',
    );
  }
  return out;
}

/** The stack's services as the daemon has them (by the namespace label). */
export async function stackServices(c: DaemonClient, ns: string, status = false): Promise<Service[]> {
  const res = await c.control.listServices({ Filters: { Labels: { [LABEL_NAMESPACE]: ns } }, Status: status });
  return (res.Services ?? []).sort((a, b) => (a.Spec?.Name ?? '').localeCompare(b.Spec?.Name ?? ''));
}

const KIND_ORDER = ['service-remove', 'network', 'secret', 'config', 'service'];

function order(c: StackChange): number {
  return KIND_ORDER.indexOf(c.Action === 'remove' ? `${c.Kind ?? ''}-remove` : (c.Kind ?? ''));
}

/** Changes by kind (removals first, then networks, secrets, configs, services), then by name. */
function sorted(res: DeployStackResponse): StackChange[] {
  return [...(res.Changes ?? [])].sort((a, b) => order(a) - order(b) || (a.Name ?? '').localeCompare(b.Name ?? ''));
}

/** Docker's progress lines for what was written (unchanged objects print nothing). */
export function deployLines(res: DeployStackResponse): string[] {
  const out: string[] = [];
  const changes = sorted(res);
  for (const c of changes) {
    if (c.Action === 'create') out.push(`Creating ${c.Kind} ${c.Name}`);
    else if (c.Action === 'remove') out.push(`Removing ${c.Kind} ${c.Name}`);
    else if (c.Action === 'update')
      out.push(c.Kind === 'service' ? `Updating service ${c.Name} (id: ${c.ID})` : `Updating ${c.Kind} ${c.Name}`);
  }
  return out;
}

/** The plan of `--dry-run`: every object with what would happen to it, updates with their diff. */
export function planLines(res: DeployStackResponse): string[] {
  const out: string[] = [];
  const changes = sorted(res);
  for (const c of changes) {
    out.push(`${(c.Action ?? '').padEnd(9)} ${c.Kind} ${c.Name}`);
    for (const d of c.Diff ?? []) out.push(`            ${d}`);
  }
  const n = (a: string): number => changes.filter((c) => c.Action === a).length;
  out.push(
    `Dry run: ${n('create')} to create, ${n('update')} to update, ${n('remove')} to remove, ${n('unchanged')} unchanged; nothing was changed`,
  );
  return out;
}

export async function deployStack(
  c: DaemonClient,
  ns: string,
  o: DeployFlags,
  lookup: DigestLookup = registryDigests(),
): Promise<void> {
  const mode = parseResolveImage(o.resolveImage);
  const files = composeFiles(o.composeFile);
  const prepared = loadOrReport(() => prepareStack(ns, { files, ...(o.compat ? { compat: true } : {}) }));
  if (prepared === undefined) return;
  const missing = await missingExternals(c, prepared);
  if (
    missing.length > 0 &&
    loadOrReport(() => {
      throw new ComposeError(missing);
    }) === undefined
  )
    return;
  printWarnings(prepared.warnings);
  const { specs } = prepared;
  const current = await stackServices(c, ns);
  for (const w of await resolveImages(specs.services, current, mode, lookup)) process.stderr.write(`${w}\n`);
  const auth: Record<string, string> = {};
  if (o.withRegistryAuth)
    for (const s of specs.services) {
      const a = registryAuthFor(s.TaskTemplate?.ContainerSpec?.Image ?? '');
      if (a) auth[s.Name ?? ''] = a;
    }
  const res = await c.control.deployStack({
    Namespace: ns,
    Networks: specs.networks,
    Secrets: specs.secrets,
    Configs: specs.configs,
    Services: specs.services,
    ExternalNetworks: specs.externalNetworks,
    ExternalSecrets: specs.externalSecrets,
    ExternalConfigs: specs.externalConfigs,
    Prune: o.prune === true,
    DryRun: o.dryRun === true,
    RegistryAuth: auth,
  });
  for (const w of res.Warnings ?? []) process.stderr.write(`${w}\n`);
  const lines = o.dryRun ? planLines(res) : deployLines(res);
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
  if (o.dryRun || o.detach) return;
  for (const ch of res.Changes ?? []) {
    if (ch.Kind !== 'service' || (ch.Action !== 'create' && ch.Action !== 'update')) continue;
    await waitOnService(c, ch.ID ?? '', { quiet: o.quiet === true, out: process.stdout });
  }
}
