/**
 * A service spec as the manager accepts it: stored as the user sent it, as Docker's daemon stores
 * it: only the mode is filled in (api's withServiceMode), enums at their zero value are named
 * (withServiceEnums) and the image is named as dockerd names it (familiarImage); the other
 * defaults are shown by `GetService` with InsertDefaults, and the loops apply them where they
 * read a spec. Then every problem is named: api's checks (name, image, mode, restart and update
 * policies, ports, mounts, health check, constraints) plus the manager's (replicas and mode
 * combinations, job counts, memory and CPU bounds as SwarmKit's, secrets and configs that must
 * exist: they are resolved to their IDs; so are networks).
 */
import {
  familiarImage,
  type ConfigReference,
  type SecretReference,
  type ServiceSpec,
  serviceModeName,
  serviceSpecProblems,
  type SpecProblem,
  withServiceEnums,
  withServiceMode,
} from '@shoal/api';
import type { ManagerContext } from '../context.js';
import { ConfigNotFoundError, InvalidRequestError, SecretNotFoundError } from '../errors.js';
import { findRef, type ObjectReader, type StoredConfig, type StoredSecret } from './objects.js';
import { resolveServiceNetworks } from '../networks/service-networks.js';

/** SwarmKit's floors: a memory value below 4 MiB and a CPU value below 0.001 are refused. */
export const MIN_MEMORY_BYTES = 4 * 1024 * 1024;
export const MIN_NANO_CPUS = 1_000_000;

function isCount(v: number | undefined): boolean {
  return v === undefined || (Number.isInteger(v) && v >= 0);
}

function managerProblems(spec: ServiceSpec): SpecProblem[] {
  const out: SpecProblem[] = [];
  const add = (path: string, message: string): void => void out.push({ path, message });
  const mode = spec.Mode ?? {};
  const set = Object.values(mode).filter((m) => m !== undefined).length;
  if (set === 0) add('Mode', 'a mode must be set (Replicated, Global, ReplicatedJob or GlobalJob)');
  if (!isCount(mode.Replicated?.Replicas)) {
    add('Mode.Replicated.Replicas', `invalid replicas ${mode.Replicated?.Replicas}: a whole number from 0`);
  }
  const job = mode.ReplicatedJob;
  if (job !== undefined) {
    if (!isCount(job.MaxConcurrent) || !isCount(job.TotalCompletions)) {
      add('Mode.ReplicatedJob', 'MaxConcurrent and TotalCompletions must be whole numbers from 0');
    }
  }
  const modeName = serviceModeName(spec);
  const maxReplicas = spec.TaskTemplate?.Placement?.MaxReplicas ?? 0;
  if (maxReplicas > 0 && modeName !== 'replicated' && modeName !== 'replicated-job') {
    add(
      'TaskTemplate.Placement.MaxReplicas',
      `max replicas per node can only be used with replicated mode (mode is ${modeName})`,
    );
  }
  const rp = spec.TaskTemplate?.RestartPolicy;
  if (rp !== undefined && !isCount(rp.MaxAttempts)) {
    add('TaskTemplate.RestartPolicy.MaxAttempts', `invalid max attempts ${rp.MaxAttempts}: a whole number from 0`);
  }
  const res = spec.TaskTemplate?.Resources;
  for (const [path, r] of [
    ['Limits', res?.Limits],
    ['Reservations', res?.Reservations],
  ] as const) {
    const mem = r?.MemoryBytes ?? 0;
    const cpu = r?.NanoCPUs ?? 0;
    if (mem > 0 && mem < MIN_MEMORY_BYTES) {
      add(`TaskTemplate.Resources.${path}.MemoryBytes`, `invalid memory value ${mem}: it must be at least 4 MiB`);
    }
    if (cpu > 0 && cpu < MIN_NANO_CPUS) {
      add(`TaskTemplate.Resources.${path}.NanoCPUs`, `invalid cpu value ${cpu / 1e9}: it must be at least 0.001`);
    }
  }
  const lm = res?.Limits?.MemoryBytes ?? 0;
  const rm = res?.Reservations?.MemoryBytes ?? 0;
  if (lm > 0 && rm > lm) add('TaskTemplate.Resources', `memory reservation ${rm} is above the memory limit ${lm}`);
  const lc = res?.Limits?.NanoCPUs ?? 0;
  const rc = res?.Reservations?.NanoCPUs ?? 0;
  if (lc > 0 && rc > lc)
    add('TaskTemplate.Resources', `cpu reservation ${rc / 1e9} is above the cpu limit ${lc / 1e9}`);
  return out;
}

/**
 * The spec to store: the mode filled in, checked, secret and config references resolved (by ID,
 * name or unique ID prefix) to their IDs and names. Throws MANAGER_INVALID_REQUEST listing every
 * problem, or MANAGER_SECRET_NOT_FOUND / MANAGER_CONFIG_NOT_FOUND. References are looked up in
 * `reader` (the store, or a stack deploy's view with the objects it is about to create).
 */
export function prepareServiceSpec(
  ctx: ManagerContext,
  given: ServiceSpec,
  reader: ObjectReader = ctx.store,
): ServiceSpec {
  // Enums at their zero value are stored named (the same state as SwarmKit's numeric enums), so
  // that a spec read back and sent again (`service scale`, `stack deploy`) is no change.
  const spec = withServiceEnums(withServiceMode(given));
  // As dockerd stores it: the image's familiar name, `:latest` when it has no tag or digest.
  const image = spec.TaskTemplate?.ContainerSpec?.Image;
  if (image && spec.TaskTemplate?.ContainerSpec) spec.TaskTemplate.ContainerSpec.Image = familiarImage(image);
  const mode = spec.Mode ?? {};
  // Jobs as Docker: MaxConcurrent 1 and TotalCompletions = MaxConcurrent when unset.
  if (mode.ReplicatedJob !== undefined) {
    const mc = mode.ReplicatedJob.MaxConcurrent ?? 1;
    mode.ReplicatedJob = { MaxConcurrent: mc, TotalCompletions: mode.ReplicatedJob.TotalCompletions ?? mc };
  }
  const problems = [...serviceSpecProblems(spec), ...managerProblems(spec)];
  if (problems.length > 0) {
    const what = spec.Name ? `service spec ${spec.Name}` : 'service spec';
    throw new InvalidRequestError(`invalid ${what}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  }
  const c = spec.TaskTemplate?.ContainerSpec;
  if (c !== undefined) {
    const name = spec.Name ?? '';
    c.Secrets = (c.Secrets ?? []).map((r): SecretReference => {
      const ref = r.SecretID || r.SecretName || '';
      const s = findRef<StoredSecret>(reader, 'secret', ref);
      if (s === undefined) throw new SecretNotFoundError(ref, name);
      return { ...r, SecretID: s.ID, SecretName: s.Spec?.Name ?? '' };
    });
    c.Configs = (c.Configs ?? []).map((r): ConfigReference => {
      const ref = r.ConfigID || r.ConfigName || '';
      const s = findRef<StoredConfig>(reader, 'config', ref);
      if (s === undefined) throw new ConfigNotFoundError(ref, name);
      return { ...r, ConfigID: s.ID, ConfigName: s.Spec?.Name ?? '' };
    });
  }
  resolveServiceNetworks(ctx, spec, reader);
  return spec;
}
