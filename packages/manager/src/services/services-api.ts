/**
 * Control RPCs for services and tasks. A service is stored as the user sent it (its mode filled
 * in), checked (service-spec.ts), its secret and config references resolved to IDs; it is
 * returned with its enums named and, for `GetService` with InsertDefaults, with Docker's defaults
 * filled in (api's defaults.ts). The orchestrator (a leader loop) makes its tasks. `UpdateService` needs the version read before
 * (a stale one fails with the store's STORE_VERSION_CONFLICT), keeps the name and the mode,
 * stores UpdateConfig/RollbackConfig as given, and gives a changed TaskTemplate a new
 * SpecVersion (the orchestrator then replaces the tasks). `RemoveService` deletes the service
 * and gives its tasks desired state `remove` in one transaction; the reaper deletes them once
 * they stopped.
 */
import {
  type CreateServiceRequest,
  type ListServicesRequest,
  type ListTasksRequest,
  type Service,
  ServiceSpec as ServiceSpecCodec,
  type ServiceSpec,
  serviceModeName,
  type ServiceStatus,
  type Task,
  TaskSpec as TaskSpecCodec,
  type TaskSpec,
  type UpdateServiceRequest,
  withEndpointViewEnums,
  withServiceDefaults,
  withServiceEnums,
} from '@shoal/api';
import { newObjectId } from '@shoal/common';
import { fromStored, type ManagerContext, type StoredNode } from '../context.js';
import { InvalidRequestError, NameExistsError } from '../errors.js';
import { checkIngressPortsFree } from '../networks/ingress-ports.js';
import { isActive, observed } from '../orchestrator/tasks.js';
import {
  baseFilter,
  findRef,
  labelsMatch,
  type ObjectReader,
  resolveRef,
  type StoredService,
  type StoredTask,
} from './objects.js';
import { randomServiceName } from './service-names.js';
import { prepareServiceSpec } from './service-spec.js';

/**
 * Whether two specs differ, compared as their wire encoding: proto3 leaves out empty lists, maps
 * and zero values, so a spec as a client decoded it (`Env: []`, `Runtime: ''`) equals the stored
 * one without those fields. (A plain deep comparison saw every `service scale` as a new TaskTemplate
 * and replaced every task.)
 */
export function specsDiffer<T>(codec: { encode(m: T): { finish(): Uint8Array } }, a: T, b: T): boolean {
  return !Buffer.from(codec.encode(canonical(a)).finish()).equals(codec.encode(canonical(b)).finish());
}

/** A copy with the keys of every plain object sorted, so that maps (Labels, Options) encode alike. */
function canonical<T>(v: T): T {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((x: unknown) => canonical(x)) as T;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) out[k] = canonical((v as Record<string, unknown>)[k]);
  return out as T;
}

function withRegistryAuth(spec: ServiceSpec, auth: string | undefined): ServiceSpec {
  if (auth === undefined || auth === '') return spec;
  const c = spec.TaskTemplate?.ContainerSpec;
  if (c === undefined) return spec;
  c.PullOptions = { ...c.PullOptions, RegistryAuth: auth };
  return spec;
}

/** A service as `createService` stores it (without Version and dates). */
export interface NewService {
  ID: string;
  Spec: ServiceSpec;
  Endpoint: NonNullable<Service['Endpoint']>;
  SpecVersion: { Index: number };
  JobStatus?: NonNullable<Service['JobStatus']>;
}

/**
 * The service `createService` would store for `given`: checked (prepareServiceSpec), its name
 * free in `reader`. Throws what createService throws; writes nothing.
 */
export function serviceToCreate(
  ctx: ManagerContext,
  given: ServiceSpec,
  auth: string | undefined,
  reader: ObjectReader = ctx.store,
): NewService {
  const spec = withRegistryAuth(prepareServiceSpec(ctx, given, reader), auth);
  const name = spec.Name ?? '';
  if (reader.byName('service', name) !== undefined) throw new NameExistsError('service', name);
  checkIngressPortsFree(reader, spec);
  const job = serviceModeName(spec) === 'replicated-job' || serviceModeName(spec) === 'global-job';
  const nowIso = new Date(ctx.clock.now()).toISOString();
  return {
    ID: newObjectId(),
    Spec: spec,
    Endpoint: { Spec: spec.EndpointSpec ?? {}, Ports: [], VirtualIPs: [] },
    SpecVersion: { Index: 1 },
    ...(job ? { JobStatus: { JobIteration: { Index: 1 }, LastExecution: nowIso } } : {}),
  };
}

/** What an update of a service would store, and whether it changes anything. */
export interface ServiceUpdate {
  next: StoredService;
  /** The stored spec before (the comparison base). */
  before: ServiceSpec;
  /** The spec differs from the stored one (compared as wire encodings). */
  specChanged: boolean;
}

/**
 * The service `updateService` would store for `req`: checked as updateService checks it
 * (version given, name and mode kept, rollback, registry auth carried over). Writes nothing.
 */
export function serviceUpdate(
  ctx: ManagerContext,
  cur: StoredService,
  req: Omit<UpdateServiceRequest, 'ServiceID'>,
  reader: ObjectReader = ctx.store,
): ServiceUpdate {
  const name = cur.Spec?.Name ?? '';
  if (req.ServiceVersion === undefined) {
    throw new InvalidRequestError(`update of service ${name}: ServiceVersion (the version read before) is required`);
  }
  let given: ServiceSpec | undefined = req.Spec;
  if (req.Rollback === 'previous') {
    if (cur.PreviousSpec === undefined)
      throw new InvalidRequestError(`service ${name} has no previous spec to roll back to`);
    given = fromStored(cur.PreviousSpec);
  } else if (req.Rollback !== undefined && req.Rollback !== '' && req.Rollback !== 'none') {
    throw new InvalidRequestError(`invalid rollback value '${req.Rollback}': use previous or none`);
  }
  if (given === undefined) throw new InvalidRequestError(`update of service ${name}: Spec is required`);
  let spec = prepareServiceSpec(ctx, { ...given, Name: given.Name || name }, reader);
  if (spec.Name !== name) throw new InvalidRequestError(`renaming services is not supported (${name} -> ${spec.Name})`);
  const oldMode = serviceModeName(cur.Spec ?? {});
  if (serviceModeName(spec) !== oldMode) {
    throw new InvalidRequestError(
      `service ${name}: changing the mode (${oldMode} -> ${serviceModeName(spec)}) is not allowed`,
    );
  }
  let auth = req.EncodedRegistryAuth;
  if ((auth ?? '') === '') {
    const from = req.RegistryAuthFrom === 'previous-spec' ? cur.PreviousSpec : cur.Spec;
    auth = from?.TaskTemplate?.ContainerSpec?.PullOptions?.RegistryAuth;
  }
  spec = withRegistryAuth(spec, auth);
  checkIngressPortsFree(reader, spec, cur.ID);
  const curSpec = fromStored(cur.Spec ?? {});
  const job = oldMode === 'replicated-job' || oldMode === 'global-job';
  const specChanged = specsDiffer<ServiceSpec>(ServiceSpecCodec, spec, curSpec);
  // A new spec version replaces the tasks; jobs run again on any change (a new iteration).
  const changed = job
    ? specChanged
    : specsDiffer<TaskSpec>(TaskSpecCodec, spec.TaskTemplate ?? {}, curSpec.TaskTemplate ?? {});
  const version = (cur.SpecVersion?.Index ?? 0) + (changed ? 1 : 0);
  const nowIso = new Date(ctx.clock.now()).toISOString();
  const next: StoredService = {
    ...cur,
    Spec: spec,
    PreviousSpec: curSpec,
    Endpoint: { ...cur.Endpoint, Spec: spec.EndpointSpec ?? {} },
    SpecVersion: { Index: version },
    ...(job && changed ? { JobStatus: { JobIteration: { Index: version }, LastExecution: nowIso } } : {}),
    Version: { Index: req.ServiceVersion.Index ?? 0 },
  };
  return { next, before: curSpec, specChanged };
}

/** The tasks of `service` that removing it gives desired state `remove`. */
export function tasksToRemove(reader: Pick<ManagerContext['store'], 'find'>, serviceId: string): StoredTask[] {
  return reader
    .find<StoredTask>('task', 'service', serviceId)
    .filter((t) => t.DesiredState !== 'remove')
    .map((t): StoredTask => ({ ...t, DesiredState: 'remove' }));
}

/** The name `service ps` shows: `<service>.<slot>` or `<service>.<node id>`. */
export function taskDisplayName(t: Task): string {
  return `${t.ServiceName ?? ''}.${(t.Slot ?? 0) > 0 ? String(t.Slot) : (t.NodeID ?? '')}`;
}

export class ServicesApi {
  constructor(private readonly ctx: ManagerContext) {}

  /**
   * A service as the daemon returns it: enums named at their zero value as dockerd prints them
   * (withServiceEnums), every default filled in with `insertDefaults` (the current spec only,
   * as SwarmKit's GetService), ServiceStatus with `withStatus`.
   */
  private view(s: StoredService, withStatus: boolean, insertDefaults = false): Service {
    const out = fromStored<Service>(s);
    if (out.Spec) out.Spec = insertDefaults ? withServiceDefaults(out.Spec) : withServiceEnums(out.Spec);
    if (out.PreviousSpec) out.PreviousSpec = withServiceEnums(out.PreviousSpec);
    if (out.Endpoint) out.Endpoint = withEndpointViewEnums(out.Endpoint);
    return withStatus ? { ...out, ServiceStatus: this.status(s) } : out;
  }

  /** Running, desired and completed task counts, as `service ls` shows them. */
  status(s: StoredService): ServiceStatus {
    const tasks = this.ctx.store.find<StoredTask>('task', 'service', s.ID);
    const nodes = new Map(this.ctx.store.list<StoredNode>('node').map((n) => [n.ID, n]));
    const current = tasks.filter((t) => (t.SpecVersion?.Index ?? 0) === (s.SpecVersion?.Index ?? 0));
    const running = tasks.filter(
      (t) => isActive(t) && observed(t) === 'running' && nodes.get(t.NodeID ?? '')?.Status?.State !== 'down',
    ).length;
    const completed = current.filter((t) => observed(t) === 'complete').length;
    const mode = s.Spec?.Mode ?? {};
    let desired: number;
    switch (serviceModeName(s.Spec ?? {})) {
      case 'replicated':
        desired = mode.Replicated?.Replicas ?? 1;
        break;
      case 'replicated-job': {
        const max = mode.ReplicatedJob?.MaxConcurrent ?? 1;
        const total = mode.ReplicatedJob?.TotalCompletions ?? max;
        desired = Math.max(0, Math.min(max, total - completed));
        break;
      }
      case 'global':
      case 'global-job':
        desired = tasks.filter((t) => isActive(t) && !(observed(t) === 'complete')).length;
    }
    return { RunningTasks: running, DesiredTasks: desired, CompletedTasks: completed };
  }

  getService(ref: string, insertDefaults = false): Service {
    return this.view(resolveRef<StoredService>(this.ctx.store, 'service', ref), false, insertDefaults);
  }

  listServices(req: ListServicesRequest): Service[] {
    const f = req.Filters;
    return this.ctx.store
      .list<StoredService>('service')
      .filter((s) => baseFilter(f, s))
      .filter((s) => (f?.Modes ?? []).length === 0 || (f?.Modes ?? []).includes(serviceModeName(s.Spec ?? {})))
      .sort((a, b) => (a.Spec?.Name ?? '').localeCompare(b.Spec?.Name ?? ''))
      .map((s) => this.view(s, req.Status === true));
  }

  private freeServiceName(): string {
    return randomServiceName((n) => this.ctx.store.byName('service', n) !== undefined);
  }

  async createService(req: CreateServiceRequest): Promise<Service> {
    if (req.Spec === undefined) throw new InvalidRequestError('create of a service: Spec is required');
    // No name: a random free one, as Docker's daemon gives.
    const named = req.Spec.Name ? req.Spec : { ...req.Spec, Name: this.freeServiceName() };
    const obj = serviceToCreate(this.ctx, named, req.EncodedRegistryAuth);
    await this.ctx.store.update((tx) => tx.create('service', { ...obj }));
    return this.getService(obj.ID);
  }

  async updateService(req: UpdateServiceRequest): Promise<Service> {
    const cur = resolveRef<StoredService>(this.ctx.store, 'service', req.ServiceID ?? '');
    const { next } = serviceUpdate(this.ctx, cur, req);
    await this.ctx.store.update((tx) => tx.update('service', next));
    return this.getService(cur.ID);
  }

  /** Deletes the service; its tasks get desired state `remove` in the same transaction. */
  async removeService(ref: string): Promise<void> {
    const cur = resolveRef<StoredService>(this.ctx.store, 'service', ref);
    const tasks = tasksToRemove(this.ctx.store, cur.ID);
    await this.ctx.store.update((tx) => {
      tx.remove('service', cur.ID, cur.Version.Index);
      for (const t of tasks) tx.update('task', t);
    });
  }

  getTask(ref: string): Task {
    return fromStored<Task>(resolveRef<StoredTask>(this.ctx.store, 'task', ref));
  }

  /**
   * Tasks as `service ps` / `docker node ps` filter them: ID prefixes, names (the task name or
   * its `<service>.<slot>` form), services and nodes (IDs, names or prefixes), desired and
   * observed states, labels, up-to-date.
   */
  listTasks(req: ListTasksRequest): Task[] {
    const f = req.Filters ?? {};
    const serviceIds = (f.ServiceIDs ?? []).map((r) => findRef<StoredService>(this.ctx.store, 'service', r)?.ID ?? r);
    const nodes = this.ctx.store.list<StoredNode>('node');
    const nodeIds = (f.NodeIDs ?? []).flatMap((r) => {
      const exact = nodes.filter((n) => n.ID === r || n.Description?.Hostname === r || n.Spec?.Name === r);
      const found = exact.length > 0 ? exact : nodes.filter((n) => n.ID.startsWith(r));
      return found.length > 0 ? found.map((n) => n.ID) : [r];
    });
    const services = new Map(this.ctx.store.list<StoredService>('service').map((s) => [s.ID, s]));
    const some = <T>(list: readonly T[] | undefined, pred: (x: T) => boolean): boolean =>
      (list ?? []).length === 0 || (list ?? []).some(pred);
    return this.ctx.store
      .list<StoredTask>('task')
      .filter(
        (t) =>
          some(f.IDPrefixes, (p) => t.ID.startsWith(p)) &&
          some(f.Names, (n) => n === t.Name || n === taskDisplayName(t)) &&
          some(f.NamePrefixes, (n) => (t.Name ?? '').startsWith(n)) &&
          some(serviceIds, (id) => id === t.ServiceID) &&
          some(nodeIds, (id) => id === t.NodeID) &&
          some(f.DesiredStates, (s) => s === t.DesiredState) &&
          some(f.States, (s) => s === observed(t)) &&
          labelsMatch(f.Labels, t.Labels) &&
          (f.UpToDate !== true ||
            (t.SpecVersion?.Index ?? 0) === (services.get(t.ServiceID ?? '')?.SpecVersion?.Index ?? -1)),
      )
      .sort(
        (a, b) =>
          (a.ServiceName ?? '').localeCompare(b.ServiceName ?? '') ||
          (a.Slot ?? 0) - (b.Slot ?? 0) ||
          (a.NodeID ?? '').localeCompare(b.NodeID ?? '') ||
          (b.CreatedAt ?? '').localeCompare(a.CreatedAt ?? ''),
      )
      .map((t) => fromStored<Task>(t));
  }

  async removeTask(ref: string): Promise<void> {
    const t = resolveRef<StoredTask>(this.ctx.store, 'task', ref);
    await this.ctx.store.update((tx) => tx.remove('task', t.ID, t.Version.Index));
  }
}
