/**
 * What `service ls` and `service ps` show of Service and Task objects, as docker's columns:
 * ls: ID NAME MODE REPLICAS IMAGE PORTS; ps: ID NAME IMAGE NODE DESIRED STATE CURRENT STATE
 * ERROR PORTS, with `\_ ` history lines and "Running 5 seconds ago". Kept apart from the
 * command wiring so that they test without a daemon.
 */
import type { PortConfig, Service, ServiceStatus, Task } from '@shoal/api';

/** docker's `service ls --filter` keys. */
export const SERVICE_FILTERS = ['id', 'label', 'mode', 'name'] as const;
/** docker's `service ps --filter` keys. */
export const TASK_FILTERS = ['id', 'name', 'node', 'desired-state'] as const;

export function modeName(s: Service): string {
  const m = s.Spec?.Mode;
  if (m?.Global) return 'global';
  if (m?.ReplicatedJob) return 'replicated job';
  if (m?.GlobalJob) return 'global job';
  return 'replicated';
}

/** The image without its digest, as docker lists it. */
export function shortImage(image: string): string {
  return image.replace(/@sha256:[0-9a-f]+$/, '');
}

/** Ports as docker's ls prints them: `*:8080->80/tcp`, consecutive ports merged into ranges. */
export function portsText(ports: readonly PortConfig[] | undefined, hostMode = false): string {
  const list = (ports ?? [])
    .filter((p) => (hostMode ? true : (p.PublishMode || 'ingress') === 'ingress') && (p.PublishedPort ?? 0) > 0)
    .map((p) => ({ pub: p.PublishedPort ?? 0, target: p.TargetPort ?? 0, proto: p.Protocol || 'tcp' }))
    .sort((a, b) => a.proto.localeCompare(b.proto) || a.pub - b.pub);
  const out: string[] = [];
  for (let i = 0; i < list.length;) {
    const first = list[i];
    if (!first) break;
    let j = i;
    while (
      j + 1 < list.length &&
      list[j + 1]?.proto === first.proto &&
      list[j + 1]?.pub === (list[j]?.pub ?? 0) + 1 &&
      list[j + 1]?.target === (list[j]?.target ?? 0) + 1
    )
      j++;
    const last = list[j] ?? first;
    out.push(
      j === i
        ? `*:${first.pub}->${first.target}/${first.proto}`
        : `*:${first.pub}-${last.pub}->${first.target}-${last.target}/${first.proto}`,
    );
    i = j + 1;
  }
  return out.join(', ');
}

/** Running/desired/completed counts from the service's tasks, as the daemon's ServiceStatus. */
export function statusFromTasks(s: Service, tasks: readonly Task[], activeNodes: number): ServiceStatus {
  const mine = tasks.filter((t) => t.ServiceID === s.ID);
  const running = mine.filter((t) => t.Status?.State === 'running').length;
  const completed = mine.filter((t) => t.Status?.State === 'complete').length;
  const m = s.Spec?.Mode;
  let desired: number;
  if (m?.Global) desired = activeNodes;
  else if (m?.ReplicatedJob)
    desired = mine.filter((t) => t.DesiredState === 'complete' && t.Status?.State !== 'complete').length;
  else if (m?.GlobalJob)
    desired = mine.filter((t) => t.DesiredState === 'complete' && t.Status?.State !== 'complete').length;
  else desired = m?.Replicated?.Replicas ?? 1;
  return { RunningTasks: running, DesiredTasks: desired, CompletedTasks: completed };
}

/** docker's REPLICAS column: `2/3`, `1/2 (3/10 completed)` for jobs, `(max 2 per node)`. */
export function replicasText(s: Service): string {
  const st = s.ServiceStatus ?? {};
  const running = st.RunningTasks ?? 0;
  const desired = st.DesiredTasks ?? 0;
  const completed = st.CompletedTasks ?? 0;
  const m = s.Spec?.Mode;
  if (m?.ReplicatedJob) {
    const total = m.ReplicatedJob.TotalCompletions ?? m.ReplicatedJob.MaxConcurrent ?? 1;
    return `${running}/${desired} (${completed}/${total} completed)`;
  }
  if (m?.GlobalJob) return `${running}/${desired} (${completed}/${desired + completed} completed)`;
  const max = s.Spec?.TaskTemplate?.Placement?.MaxReplicas ?? 0;
  return max > 0 && !m?.Global ? `${running}/${desired} (max ${max} per node)` : `${running}/${desired}`;
}

/** One row of `service ls` (also its `--format json` object). */
export interface ServiceRow {
  ID: string;
  Name: string;
  Mode: string;
  Replicas: string;
  Image: string;
  Ports: string;
}

export const SERVICE_LS_TABLE = '{{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}';
export const SERVICE_LS_HEADERS: Readonly<Record<string, string>> = {
  ID: 'ID',
  Name: 'NAME',
  Mode: 'MODE',
  Replicas: 'REPLICAS',
  Image: 'IMAGE',
  Ports: 'PORTS',
};

export function serviceRow(s: Service): ServiceRow {
  return {
    ID: (s.ID ?? '').slice(0, 12),
    Name: s.Spec?.Name ?? '',
    Mode: modeName(s),
    Replicas: replicasText(s),
    Image: shortImage(s.Spec?.TaskTemplate?.ContainerSpec?.Image ?? ''),
    Ports: portsText(s.Endpoint?.Ports ?? s.Spec?.EndpointSpec?.Ports),
  };
}

/** go-units' HumanDuration, lower-cased as docker's ps prints it ("less than a second"). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return 'about a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'about an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/** `running` → `Running`. */
export function title(s: string | undefined): string {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : '';
}

/** One row of `service ps`. */
export interface TaskRow {
  ID: string;
  Name: string;
  Image: string;
  Node: string;
  DesiredState: string;
  CurrentState: string;
  Error: string;
  Ports: string;
}

export const SERVICE_PS_TABLE =
  '{{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}';
export const SERVICE_PS_HEADERS: Readonly<Record<string, string>> = {
  ID: 'ID',
  Name: 'NAME',
  Image: 'IMAGE',
  Node: 'NODE',
  DesiredState: 'DESIRED STATE',
  CurrentState: 'CURRENT STATE',
  Error: 'ERROR',
  Ports: 'PORTS',
};

const MAX_ERR_LENGTH = 30;

/** A task's slot name as docker prints it: `web.2`, or `web.<node id>` for global tasks. */
export function taskSlotName(t: Task, serviceName: string): string {
  return t.Slot ? `${serviceName}.${t.Slot}` : `${serviceName}.${t.NodeID ?? ''}`;
}

/**
 * Tasks sorted as docker's ps: by service name, then slot (or node), newest created first; each row
 * after the first of its slot is a history line, its name indented with ` \_ `.
 */
export function taskRows(
  tasks: readonly Task[],
  names: ReadonlyMap<string, string>,
  hostnames: ReadonlyMap<string, string>,
  opts: { noTrunc: boolean; now: number },
): TaskRow[] {
  const svcName = (t: Task): string => names.get(t.ServiceID ?? '') || t.ServiceName || t.ServiceID || '';
  // Creation time, as docker's: a replaced task's status changes after its replacement was made.
  const created = (t: Task): number => Date.parse(t.CreatedAt ?? '') || 0;
  const ts = (t: Task): number => Date.parse(t.Status?.Timestamp ?? t.UpdatedAt ?? t.CreatedAt ?? '') || 0;
  const sorted = [...tasks].sort(
    (a, b) =>
      svcName(a).localeCompare(svcName(b)) ||
      (a.Slot ?? 0) - (b.Slot ?? 0) ||
      (a.NodeID ?? '').localeCompare(b.NodeID ?? '') ||
      created(b) - created(a),
  );
  let prev = '';
  return sorted.map((t) => {
    const slot = taskSlotName(t, svcName(t));
    const name = slot === prev ? ` \\_ ${slot}` : slot;
    prev = slot;
    const id = t.ID ?? '';
    const image = t.Spec?.ContainerSpec?.Image ?? '';
    const err = t.Status?.Err ?? '';
    const state = t.Status?.State;
    const when = ts(t);
    return {
      ID: opts.noTrunc ? id : id.slice(0, 12),
      Name: name,
      Image: opts.noTrunc ? image : shortImage(image),
      Node: hostnames.get(t.NodeID ?? '') ?? t.NodeID ?? '',
      DesiredState: title(t.DesiredState),
      CurrentState: state
        ? `${title(state)} ${when ? `${humanDuration(Math.max(0, opts.now - when))} ago` : ''}`.trim()
        : '',
      Error:
        err === ''
          ? ''
          : !opts.noTrunc && err.length > MAX_ERR_LENGTH
            ? `"${err.slice(0, MAX_ERR_LENGTH - 1)}…"`
            : `"${err}"`,
      Ports: portsText(t.Status?.PortStatus?.Ports, true),
    };
  });
}
