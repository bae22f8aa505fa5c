/**
 * A node's assignments, as its `Assignments` stream carries them: every task with `NodeID` =
 * the node and a state from `assigned` on (until the task is deleted), plus exactly the
 * secrets and configs those tasks reference (`Spec.ContainerSpec.Secrets[].SecretID`,
 * `Configs[].ConfigID`) while a referencing task may still run: not once it has ended and the
 * managers want it stopped. Secrets go with their `Spec.Data`, read from the store; nothing
 * else ever reaches the node. With a NetworkStates (dispatcher-networks.ts), also the state of
 * every overlay network the node needs (its tasks' networks and the ingress network), sent
 * again whole whenever its content changes.
 *
 * The first message is the complete set; then a store watch (tasks, secrets, configs, and for
 * networks services, nodes and networks) brings changes, and the changes of one event-loop turn
 * go in one incremental message: updated or new objects (secrets, configs and networks before
 * the tasks that use them), then removals (tasks before the secrets, configs and networks they
 * used). `ResultsIn` counts messages; `AppliesTo` names the one before.
 */
import {
  type AssignmentChange,
  type AssignmentsMessage,
  isTerminalTaskState,
  type Task,
  taskStateRank,
} from '@shoal/api';
import type { Change, ClusterStore, StoredObject } from '@shoal/store';
import { fromStored } from './context.js';
import type { NetworkStates } from './dispatcher-networks.js';

type StoredTask = Task & StoredObject;

const ASSIGNED = taskStateRank('assigned');
const SHUTDOWN = taskStateRank('shutdown');

/** True for a task that belongs in its node's assignments. */
export function isAssigned(t: Task, nodeId: string): boolean {
  return t.NodeID === nodeId && taskStateRank(t.Status?.State ?? '') >= ASSIGNED;
}

/** True while a task may still use its secrets and configs: not ended-and-meant-to-stop. */
export function usesResources(t: Task): boolean {
  return !(isTerminalTaskState(t.Status?.State ?? '') && taskStateRank(t.DesiredState ?? '') >= SHUTDOWN);
}

interface Wanted {
  readonly tasks: Map<string, StoredTask>;
  readonly secrets: Map<string, StoredObject>;
  readonly configs: Map<string, StoredObject>;
  /** Every secret and config ID the node's tasks reference (present in the store or not). */
  readonly refs: Set<string>;
}

/** What `nodeId` should hold now, from the store. */
export function wantedFor(store: ClusterStore, nodeId: string): Wanted {
  const tasks = new Map<string, StoredTask>();
  const secrets = new Map<string, StoredObject>();
  const configs = new Map<string, StoredObject>();
  const refs = new Set<string>();
  for (const t of store.find<StoredTask>('task', 'node', nodeId)) {
    if (!isAssigned(t, nodeId)) continue;
    tasks.set(t.ID, t);
    if (!usesResources(t)) continue;
    const c = t.Spec?.ContainerSpec;
    for (const s of c?.Secrets ?? []) {
      const id = s.SecretID ?? '';
      if (id === '') continue;
      refs.add(id);
      const o = store.get('secret', id);
      if (o !== undefined) secrets.set(id, o);
    }
    for (const s of c?.Configs ?? []) {
      const id = s.ConfigID ?? '';
      if (id === '') continue;
      refs.add(id);
      const o = store.get('config', id);
      if (o !== undefined) configs.set(id, o);
    }
  }
  return { tasks, secrets, configs, refs };
}

/** The assignment set a stream has sent so far (object ID -> version), and its sequence. */
export class AssignmentSet {
  private readonly sent = {
    task: new Map<string, number>(),
    secret: new Map<string, number>(),
    config: new Map<string, number>(),
  };
  /** Network ID -> the generation of its state last sent. */
  private readonly sentNetworks = new Map<string, number>();
  private refs = new Set<string>();
  private seq = 0;

  constructor(
    private readonly store: ClusterStore,
    readonly nodeId: string,
    private readonly networks?: NetworkStates,
  ) {}

  /** True when a store change may change this node's set. */
  concerns(c: Change): boolean {
    const id = c.object.ID;
    if (c.kind === 'task') {
      const t = c.object as Task;
      const p = c.previous as Task | undefined;
      if (t.NodeID === this.nodeId || p?.NodeID === this.nodeId) return true;
      return this.onSentNetwork(t) || (p !== undefined && this.onSentNetwork(p));
    }
    if (c.kind === 'secret' || c.kind === 'config') return this.refs.has(id) || this.sent[c.kind].has(id);
    if (this.networks === undefined) return false;
    // Services, nodes and networks change rarely: any may change a network state sent here
    // (a VIP, an endpoint's node address or liveness, a new ingress network).
    if (c.kind === 'network') return true;
    return (c.kind === 'service' || c.kind === 'node') && this.sentNetworks.size > 0;
  }

  private onSentNetwork(t: Task): boolean {
    return (t.NetworksAttachments ?? []).some((a) => this.sentNetworks.has(a.Network?.ID ?? ''));
  }

  /** The complete set (first message). */
  complete(): AssignmentsMessage {
    const changes = this.diff();
    this.seq++;
    return { Type: 'complete', AppliesTo: '', ResultsIn: String(this.seq), Changes: changes };
  }

  /** The changes since the last message, or undefined when there are none. */
  incremental(): AssignmentsMessage | undefined {
    const changes = this.diff();
    if (changes.length === 0) return undefined;
    const prev = this.seq++;
    return { Type: 'incremental', AppliesTo: String(prev), ResultsIn: String(this.seq), Changes: changes };
  }

  private diff(): AssignmentChange[] {
    const w = wantedFor(this.store, this.nodeId);
    this.refs = w.refs;
    const updates: { first: AssignmentChange[]; tasks: AssignmentChange[] } = { first: [], tasks: [] };
    const removes: { tasks: AssignmentChange[]; last: AssignmentChange[] } = { tasks: [], last: [] };
    const sync = (kind: 'task' | 'secret' | 'config', want: Map<string, StoredObject>): void => {
      const sent = this.sent[kind];
      const up = kind === 'task' ? updates.tasks : updates.first;
      const rm = kind === 'task' ? removes.tasks : removes.last;
      for (const [id, o] of want) {
        if (sent.get(id) === o.Version.Index) continue;
        sent.set(id, o.Version.Index);
        up.push({ Action: 'update', Assignment: assignment(kind, o) });
      }
      for (const id of [...sent.keys()]) {
        if (want.has(id)) continue;
        sent.delete(id);
        rm.push({ Action: 'remove', Assignment: assignment(kind, { ID: id } as StoredObject, true) });
      }
    };
    sync('secret', w.secrets);
    sync('config', w.configs);
    const nets = this.syncNetworks();
    sync('task', w.tasks);
    return [...updates.first, ...nets.updates, ...updates.tasks, ...removes.tasks, ...nets.removes, ...removes.last];
  }

  private syncNetworks(): { updates: AssignmentChange[]; removes: AssignmentChange[] } {
    const updates: AssignmentChange[] = [];
    const removes: AssignmentChange[] = [];
    const states = this.networks;
    if (states === undefined) return { updates, removes };
    const want = new Set<string>();
    for (const id of [...states.neededBy(this.nodeId)].sort()) {
      const e = states.get(id);
      if (e === undefined) continue;
      want.add(id);
      if (this.sentNetworks.get(id) === e.generation) continue;
      this.sentNetworks.set(id, e.generation);
      updates.push({ Action: 'update', Assignment: { Network: e.state } });
    }
    for (const id of [...this.sentNetworks.keys()]) {
      if (want.has(id)) continue;
      this.sentNetworks.delete(id);
      removes.push({ Action: 'remove', Assignment: { Network: { Network: { ID: id } } } });
    }
    return { updates, removes };
  }
}

function assignment(
  kind: 'task' | 'secret' | 'config',
  o: StoredObject,
  idOnly = false,
): AssignmentChange['Assignment'] {
  const v = idOnly ? { ID: o.ID } : fromStored(o);
  if (kind === 'task') return { Task: v as Task };
  if (kind === 'secret') return { Secret: v };
  return { Config: v };
}
