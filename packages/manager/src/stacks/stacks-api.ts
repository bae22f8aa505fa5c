/**
 * Control's DeployStack: a stack (specs converted by the CLI from Compose files) written as ONE
 * store transaction on the leader. Every object is checked first with the checks of its own
 * Create/Update call (checkNewNetwork, secretToCreate, labelsOnlyUpdate, serviceToCreate,
 * serviceUpdate), against a view of the store that already holds the objects the deploy
 * creates; any problem refuses the whole deploy, naming each object, and nothing is written.
 *
 * Networks and services are matched by name and the `com.docker.stack.namespace` label: an
 * existing network of the stack is kept as it is (as Docker), a service is updated only when its
 * spec changed (wire-encoding equality, as `service update`), keeping its ForceUpdate counter; a
 * network or service of that name outside the stack is refused. Secrets and configs are matched
 * by name alone, as Docker's `stack deploy` does (it updates any secret of that name): one made
 * by hand, or by another stack, is adopted when its data is the same (its labels become the
 * stack's), and refused when the data differs ("only updates to Labels are allowed").
 * `Prune` removes the stack's services no longer given; `DryRun` returns the plan and writes
 * nothing.
 */
import type {
  ConfigSpec,
  DeployStackRequest,
  DeployStackResponse,
  NetworkSpec,
  SecretSpec,
  ServiceSpec,
  StackChange,
} from '@shoal/api';
import { newObjectId, ShoalError } from '@shoal/common';
import type { StoredObject } from '@shoal/store';
import type { ManagerContext } from '../context.js';
import { InvalidRequestError, NameExistsError, StackDeployError, type StackProblem } from '../errors.js';
import type { NetworkAllocation } from '../networks/network-allocation.js';
import { checkNewNetwork } from '../networks/networks-api.js';
import type { StoredConfig, StoredNetwork, StoredSecret, StoredService, StoredTask } from '../services/objects.js';
import { configToCreate, labelsOnlyUpdate, secretToCreate } from '../services/secrets-configs.js';
import { serviceToCreate, serviceUpdate, tasksToRemove, type NewService } from '../services/services-api.js';
import { specDiff } from './spec-diff.js';
import { StackView } from './stack-view.js';

/** The label that makes an object part of a stack; its value is the stack name. */
export const STACK_NAMESPACE_LABEL = 'com.docker.stack.namespace';

/** Network names a service may use without them being in the store (Docker's non-user-defined ones). */
const BUILTIN_NETWORKS = new Set(['host', 'bridge', 'none', 'default']);

type Kind = StackProblem['kind'];

/** Everything one deploy writes, in order. */
interface Plan {
  changes: StackChange[];
  networks: { ID: string; Spec: NetworkSpec }[];
  creates: { kind: 'secret' | 'config' | 'service'; obj: { ID: string; Spec?: StoredObject['Spec'] } }[];
  updates: { kind: 'secret' | 'config' | 'service'; obj: StoredObject }[];
  removes: { service: StoredService; tasks: StoredTask[] }[];
}

export function stackOf(o: { Spec?: { Labels?: Readonly<Record<string, string>> } | undefined }): string | undefined {
  return o.Spec?.Labels?.[STACK_NAMESPACE_LABEL];
}

function sameLabels(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined) {
  const ka = Object.keys(a ?? {}).sort();
  const kb = Object.keys(b ?? {}).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a?.[k] === b?.[k]);
}

export class StacksApi {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly allocation: NetworkAllocation,
  ) {}

  async deploy(req: DeployStackRequest): Promise<DeployStackResponse> {
    const ns = req.Namespace ?? '';
    if (ns.replace(/[\s"']/g, '') === '') throw new InvalidRequestError(`invalid stack name: ${JSON.stringify(ns)}`);
    return this.allocation.exclusive('stack deploy', async (a) => {
      const plan = await this.plan(ns, req);
      const writes = plan.networks.length + plan.creates.length + plan.updates.length + plan.removes.length;
      if (req.DryRun === true || writes === 0)
        return { Changes: plan.changes, Revision: this.ctx.store.revision, Warnings: [] };
      const allocated: string[] = [];
      const nets: Record<string, unknown>[] = [];
      try {
        for (const n of plan.networks) {
          let r;
          try {
            r = a.allocateNetwork({ ID: n.ID, Spec: n.Spec });
          } catch (err) {
            if (!(err instanceof ShoalError)) throw err;
            throw new StackDeployError(ns, [{ kind: 'network', name: n.Spec.Name ?? n.ID, error: err }]);
          }
          allocated.push(n.ID);
          nets.push({ ID: n.ID, Spec: n.Spec, DriverState: r.DriverState ?? {}, IPAMOptions: r.IPAMOptions ?? {} });
        }
        const committed = await this.ctx.store.update((tx) => {
          for (const n of nets) tx.create('network', { ...n, ID: n['ID'] as string });
          for (const c of plan.creates) tx.create(c.kind, { ...c.obj });
          for (const u of plan.updates) tx.update(u.kind, u.obj);
          for (const r of plan.removes) {
            tx.remove('service', r.service.ID, r.service.Version.Index);
            for (const t of r.tasks) tx.update('task', t);
          }
        });
        for (const id of allocated) this.allocation.networkAllocated(id);
        this.ctx.logger.info({ stack: ns, revision: committed.revision, changes: writes }, 'stack deployed');
        return { Changes: plan.changes, Revision: committed.revision, Warnings: [] };
      } catch (err) {
        for (const id of allocated) a.releaseNetwork(id);
        this.allocation.invalidate();
        throw err;
      }
    });
  }

  /** Checks every object and decides what to write; throws StackDeployError with every problem. */
  private async plan(ns: string, req: DeployStackRequest): Promise<Plan> {
    const store = this.ctx.store;
    const view = new StackView(store);
    const problems: StackProblem[] = [];
    const plan: Plan = { changes: [], networks: [], creates: [], updates: [], removes: [] };
    const change = (Kind: Kind, Name: string, ID: string, Action: string, Diff: string[] = []): void =>
      void plan.changes.push({ Kind, Name, ID, Action, Diff });
    const attempt = async (kind: Kind, name: string, fn: () => void | Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        if (!(err instanceof ShoalError)) throw err;
        problems.push({ kind, name, error: err });
      }
    };
    /** The spec with the stack label; a different stack label is a problem. */
    const labelled = <S extends { Name?: string; Labels?: Record<string, string> }>(kind: Kind, spec: S): S => {
      const given = spec.Labels?.[STACK_NAMESPACE_LABEL];
      if (given !== undefined && given !== ns)
        throw new InvalidRequestError(
          `${kind} ${spec.Name ?? ''}: label ${STACK_NAMESPACE_LABEL}=${given} is not ${ns}`,
        );
      return { ...spec, Labels: { ...spec.Labels, [STACK_NAMESPACE_LABEL]: ns } };
    };
    const seen = new Set<string>();
    const once = (kind: Kind, name: string): void => {
      if (name === '') throw new InvalidRequestError(`a ${kind} without a name`);
      if (seen.has(`${kind}/${name}`)) throw new InvalidRequestError(`${kind} ${name} is given twice`);
      seen.add(`${kind}/${name}`);
    };
    /** An existing object of this name must belong to the stack. */
    const ours = (kind: Kind, o: StoredObject): void => {
      if (stackOf(o) !== ns) throw new NameExistsError(kind, `${o.Spec?.Name ?? o.ID} (not part of stack ${ns})`);
    };

    for (const name of req.ExternalNetworks ?? []) {
      if (BUILTIN_NETWORKS.has(name)) continue;
      await attempt('network', name, () => {
        if (view.byName('network', name) === undefined)
          throw new InvalidRequestError(
            `network "${name}" is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed`,
          );
      });
    }
    for (const [kind, names] of [
      ['secret', req.ExternalSecrets],
      ['config', req.ExternalConfigs],
    ] as const) {
      for (const name of names ?? []) {
        await attempt(kind, name, () => {
          if (view.byName(kind, name) === undefined)
            throw new InvalidRequestError(
              `${kind} "${name}" is declared as external, but could not be found: create it before the stack is deployed`,
            );
        });
      }
    }

    for (const given of req.Networks ?? []) {
      const name = given.Name ?? '';
      await attempt('network', name, async () => {
        once('network', name);
        const spec = labelled('network', given);
        const cur = store.byName<StoredNetwork>('network', name);
        if (cur !== undefined) {
          ours('network', cur);
          change('network', name, cur.ID, 'unchanged');
          return;
        }
        const checked = await checkNewNetwork(view, spec);
        const id = newObjectId();
        view.add('network', { ID: id, Spec: checked });
        plan.networks.push({ ID: id, Spec: checked });
        change('network', name, id, 'create');
      });
    }

    for (const [kind, specs] of [
      ['secret', req.Secrets],
      ['config', req.Configs],
    ] as const) {
      for (const given of (specs ?? []) as (SecretSpec | ConfigSpec)[]) {
        const name = given.Name ?? '';
        await attempt(kind, name, () => {
          once(kind, name);
          const spec = labelled(kind, given);
          const cur = store.byName<StoredSecret | StoredConfig>(kind, name);
          if (cur !== undefined) {
            // As Docker: whoever made it, a secret or config of this name is updated in place,
            // which only its labels may be (identical data is adopted, other data refused).
            const next = labelsOnlyUpdate(kind, cur, spec, cur.Version);
            if (sameLabels(cur.Spec?.Labels, next.Spec?.Labels)) {
              change(kind, name, cur.ID, 'unchanged');
              return;
            }
            plan.updates.push({ kind, obj: next });
            change(kind, name, cur.ID, 'update', specDiff(cur.Spec?.Labels, next.Spec?.Labels, 'Labels'));
            return;
          }
          const obj = kind === 'secret' ? secretToCreate(spec, view) : configToCreate(spec, view);
          view.add(kind, obj);
          plan.creates.push({ kind, obj });
          change(kind, name, obj.ID, 'create');
        });
      }
    }

    const names = new Set<string>();
    for (const given of req.Services ?? []) {
      const name = given.Name ?? '';
      names.add(name);
      await attempt('service', name, () => {
        once('service', name);
        const spec: ServiceSpec = labelled('service', structuredClone(given));
        const auth = req.RegistryAuth?.[name];
        const cur = store.byName<StoredService>('service', name);
        if (cur !== undefined) {
          ours('service', cur);
          // As Docker: a re-deploy keeps the service's ForceUpdate counter.
          const force = cur.Spec?.TaskTemplate?.ForceUpdate;
          if (force !== undefined) spec.TaskTemplate = { ...spec.TaskTemplate, ForceUpdate: force };
          const u = serviceUpdate(
            this.ctx,
            cur,
            { ServiceVersion: cur.Version, Spec: spec, ...(auth ? { EncodedRegistryAuth: auth } : {}) },
            view,
          );
          if (!u.specChanged) {
            change('service', name, cur.ID, 'unchanged');
            return;
          }
          plan.updates.push({ kind: 'service', obj: u.next });
          change('service', name, cur.ID, 'update', specDiff(u.before, u.next.Spec));
          return;
        }
        const obj: NewService = serviceToCreate(this.ctx, spec, auth, view);
        view.add('service', obj);
        plan.creates.push({ kind: 'service', obj });
        change('service', name, obj.ID, 'create');
      });
    }

    if (req.Prune === true) {
      const gone = store
        .list<StoredService>('service')
        .filter((s) => stackOf(s) === ns && !names.has(s.Spec?.Name ?? ''))
        .sort((x, y) => (x.Spec?.Name ?? '').localeCompare(y.Spec?.Name ?? ''));
      for (const s of gone) {
        view.remove('service', s.ID);
        plan.removes.push({ service: s, tasks: tasksToRemove(store, s.ID) });
        change('service', s.Spec?.Name ?? s.ID, s.ID, 'remove');
      }
    }

    if (problems.length > 0) throw new StackDeployError(ns, problems);
    return plan;
  }
}
