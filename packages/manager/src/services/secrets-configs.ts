/**
 * Control RPCs for secrets and configs, with Docker's rules: names as Docker's (letters, digits,
 * '-', '_', '.'), unique; secret data under 500 KiB, config data under 1000 KiB; only labels may
 * change; `rm` is refused while a service uses the object. A secret's Data is kept in the store
 * (sealed with the DEK in the WAL and snapshots) and never returned by Get or List.
 */
import {
  type Config,
  type ConfigSpec,
  configSpecProblems,
  type CreateConfigRequest,
  type CreateSecretRequest,
  type ListConfigsRequest,
  type ListSecretsRequest,
  type Secret,
  type SecretSpec,
  secretSpecProblems,
  type SpecProblem,
  type UpdateConfigRequest,
  type UpdateSecretRequest,
} from '@shoal/api';
import { newObjectId } from '@shoal/common';
import { fromStored, type ManagerContext } from '../context.js';
import { InUseError, InvalidRequestError, NameExistsError } from '../errors.js';
import {
  baseFilter,
  type ObjectReader,
  resolveRef,
  secretView,
  type StoredConfig,
  type StoredSecret,
  type StoredService,
} from './objects.js';

function check(what: string, problems: readonly SpecProblem[]): void {
  if (problems.length === 0) return;
  throw new InvalidRequestError(`invalid ${what}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return Buffer.from(a ?? []).equals(Buffer.from(b ?? []));
}

/** The names of the services whose tasks reference the secret (kind 'secret') or config. */
export function servicesUsing(ctx: ManagerContext, kind: 'secret' | 'config', id: string): string[] {
  const names: string[] = [];
  for (const s of ctx.store.list<StoredService>('service')) {
    const c = s.Spec?.TaskTemplate?.ContainerSpec;
    const used =
      kind === 'secret'
        ? (c?.Secrets ?? []).some((r) => r.SecretID === id)
        : (c?.Configs ?? []).some((r) => r.ConfigID === id);
    if (used) names.push(s.Spec?.Name ?? s.ID);
  }
  return names.sort();
}

/** The secret `createSecret` would store: checked, its name free in `reader`. Writes nothing. */
export function secretToCreate(given: SecretSpec | undefined, reader: ObjectReader): { ID: string; Spec: SecretSpec } {
  const spec: SecretSpec = { Labels: {}, ...given, Data: Buffer.from(given?.Data ?? []) };
  check('secret spec', secretSpecProblems(spec));
  if (reader.byName('secret', spec.Name ?? '') !== undefined) throw new NameExistsError('secret', spec.Name ?? '');
  return { ID: newObjectId(), Spec: spec };
}

/** The config `createConfig` would store: checked, its name free in `reader`. Writes nothing. */
export function configToCreate(given: ConfigSpec | undefined, reader: ObjectReader): { ID: string; Spec: ConfigSpec } {
  const spec: ConfigSpec = { Labels: {}, ...given, Data: Buffer.from(given?.Data ?? []) };
  check('config spec', configSpecProblems(spec));
  if (reader.byName('config', spec.Name ?? '') !== undefined) throw new NameExistsError('config', spec.Name ?? '');
  return { ID: newObjectId(), Spec: spec };
}

/**
 * The secret or config an update would store: Docker's rule that only labels may change (a new
 * name or new data is refused). Writes nothing.
 */
export function labelsOnlyUpdate<T extends StoredSecret | StoredConfig>(
  kind: 'secret' | 'config',
  cur: T,
  spec: SecretSpec | ConfigSpec | undefined,
  version: { Index?: number } | undefined,
): T {
  const name = cur.Spec?.Name ?? '';
  if (version === undefined)
    throw new InvalidRequestError(
      `update of ${kind} ${name}: ${kind === 'secret' ? 'Secret' : 'Config'}Version is required`,
    );
  if (spec === undefined) throw new InvalidRequestError(`update of ${kind} ${name}: Spec is required`);
  if ((spec.Name ?? '') !== '' && spec.Name !== name) {
    throw new InvalidRequestError(`update of ${kind} ${name}: only updates to Labels are allowed (Name changed)`);
  }
  if ((spec.Data?.length ?? 0) > 0 && !sameBytes(spec.Data, fromStored(cur.Spec?.Data))) {
    throw new InvalidRequestError(`update of ${kind} ${name}: only updates to Labels are allowed (Data changed)`);
  }
  return { ...cur, Spec: { ...cur.Spec, Labels: spec.Labels ?? {} }, Version: { Index: version.Index ?? 0 } };
}

export class SecretsConfigsApi {
  constructor(private readonly ctx: ManagerContext) {}

  // ---- secrets ----

  getSecret(ref: string): Secret {
    return secretView(resolveRef<StoredSecret>(this.ctx.store, 'secret', ref));
  }

  listSecrets(req: ListSecretsRequest): Secret[] {
    return this.ctx.store
      .list<StoredSecret>('secret')
      .filter((s) => baseFilter(req.Filters, s))
      .sort((a, b) => (a.Spec?.Name ?? '').localeCompare(b.Spec?.Name ?? ''))
      .map(secretView);
  }

  async createSecret(req: CreateSecretRequest): Promise<Secret> {
    const obj = secretToCreate(req.Spec, this.ctx.store);
    await this.ctx.store.update((tx) => tx.create('secret', obj));
    return this.getSecret(obj.ID);
  }

  async updateSecret(req: UpdateSecretRequest): Promise<Secret> {
    const cur = resolveRef<StoredSecret>(this.ctx.store, 'secret', req.SecretID ?? '');
    const next = labelsOnlyUpdate('secret', cur, req.Spec, req.SecretVersion);
    await this.ctx.store.update((tx) => tx.update('secret', next));
    return this.getSecret(cur.ID);
  }

  async removeSecret(ref: string): Promise<void> {
    const cur = resolveRef<StoredSecret>(this.ctx.store, 'secret', ref);
    const users = servicesUsing(this.ctx, 'secret', cur.ID);
    if (users.length > 0) throw new InUseError('secret', cur.Spec?.Name ?? cur.ID, users);
    await this.ctx.store.update((tx) => tx.remove('secret', cur.ID, cur.Version.Index));
  }

  // ---- configs ----

  getConfig(ref: string): Config {
    return fromStored<Config>(resolveRef<StoredConfig>(this.ctx.store, 'config', ref));
  }

  listConfigs(req: ListConfigsRequest): Config[] {
    return this.ctx.store
      .list<StoredConfig>('config')
      .filter((s) => baseFilter(req.Filters, s))
      .sort((a, b) => (a.Spec?.Name ?? '').localeCompare(b.Spec?.Name ?? ''))
      .map((c) => fromStored<Config>(c));
  }

  async createConfig(req: CreateConfigRequest): Promise<Config> {
    const obj = configToCreate(req.Spec, this.ctx.store);
    await this.ctx.store.update((tx) => tx.create('config', obj));
    return this.getConfig(obj.ID);
  }

  async updateConfig(req: UpdateConfigRequest): Promise<Config> {
    const cur = resolveRef<StoredConfig>(this.ctx.store, 'config', req.ConfigID ?? '');
    const next = labelsOnlyUpdate('config', cur, req.Spec, req.ConfigVersion);
    await this.ctx.store.update((tx) => tx.update('config', next));
    return this.getConfig(cur.ID);
  }

  async removeConfig(ref: string): Promise<void> {
    const cur = resolveRef<StoredConfig>(this.ctx.store, 'config', ref);
    const users = servicesUsing(this.ctx, 'config', cur.ID);
    if (users.length > 0) throw new InUseError('config', cur.Spec?.Name ?? cur.ID, users);
    await this.ctx.store.update((tx) => tx.remove('config', cur.ID, cur.Version.Index));
  }
}
