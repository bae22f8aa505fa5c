/** `service inspect --pretty`: docker's human-readable summary of a service. */
import type { Service } from '@shoal/api';
import { modeName } from './view.js';
import { bytesSize, goDurationString } from './units.js';

function cpus(nano: number): string {
  return String(nano / 1e9);
}

/** The text block of one service. */
export function prettyService(s: Service): string {
  const spec = s.Spec ?? {};
  const t = spec.TaskTemplate ?? {};
  const c = t.ContainerSpec ?? {};
  const out: string[] = [];
  const add = (line: string): void => {
    out.push(line);
  };
  add(`ID:\t\t${s.ID ?? ''}`);
  add(`Name:\t\t${spec.Name ?? ''}`);
  const labels = Object.entries(spec.Labels ?? {});
  if (labels.length > 0) {
    add('Labels:');
    for (const [k, v] of labels) add(` ${k}=${v}`);
  }
  const mode = modeName(s);
  add(`Service Mode:\t${mode.replace(/(^|\s)\w/g, (m) => m.toUpperCase())}`);
  if (spec.Mode?.Replicated) add(` Replicas:\t${spec.Mode.Replicated.Replicas ?? 1}`);
  if (spec.Mode?.ReplicatedJob) {
    add(` Max Concurrent:\t${spec.Mode.ReplicatedJob.MaxConcurrent ?? 1}`);
    add(
      ` Total Completions:\t${spec.Mode.ReplicatedJob.TotalCompletions ?? spec.Mode.ReplicatedJob.MaxConcurrent ?? 1}`,
    );
  }
  if (s.UpdateStatus?.State) {
    add('UpdateStatus:');
    add(` State:\t\t${s.UpdateStatus.State}`);
    if (s.UpdateStatus.StartedAt) add(` Started:\t${s.UpdateStatus.StartedAt}`);
    if (s.UpdateStatus.CompletedAt) add(` Completed:\t${s.UpdateStatus.CompletedAt}`);
    add(` Message:\t${s.UpdateStatus.Message ?? ''}`);
  }
  const p = t.Placement;
  if (p && ((p.Constraints?.length ?? 0) > 0 || (p.Preferences?.length ?? 0) > 0 || (p.MaxReplicas ?? 0) > 0)) {
    add('Placement:');
    if (p.Constraints?.length) add(` Constraints:\t[${p.Constraints.join(' ')}]`);
    if (p.Preferences?.length)
      add(` Preferences:\t[${p.Preferences.map((x) => `{Spread=${x.Spread?.SpreadDescriptor ?? ''}}`).join(' ')}]`);
    if (p.MaxReplicas) add(` Max Replicas Per Node:\t${p.MaxReplicas}`);
  }
  for (const [label, u] of [
    ['UpdateConfig', spec.UpdateConfig],
    ['RollbackConfig', spec.RollbackConfig],
  ] as const) {
    if (!u) continue;
    add(`${label}:`);
    add(` Parallelism:\t${u.Parallelism ?? 0}`);
    if (u.Delay) add(` Delay:\t\t${goDurationString(u.Delay)}`);
    add(` On failure:\t${u.FailureAction ?? ''}`);
    add(` Monitoring Period: ${goDurationString(u.Monitor ?? 0)}`);
    add(` Max failure ratio: ${u.MaxFailureRatio ?? 0}`);
    add(` Update order:      ${u.Order ?? ''}`);
  }
  add('ContainerSpec:');
  add(` Image:\t\t${c.Image ?? ''}`);
  if (c.Command?.length) add(` Command:\t${c.Command.join(' ')}`);
  if (c.Args?.length) add(` Args:\t\t${c.Args.join(' ')}`);
  if (c.Env?.length) add(` Env:\t\t${c.Env.join(' ')}`);
  if (c.Dir) add(` Dir:\t\t${c.Dir}`);
  if (c.User) add(` User:\t\t${c.User}`);
  if (c.Hostname) add(` Hostname:\t${c.Hostname}`);
  if (c.Init !== undefined) add(` Init:\t\t${String(c.Init)}`);
  if (c.StopGracePeriod !== undefined) add(` StopGracePeriod: ${goDurationString(c.StopGracePeriod)}`);
  if (c.StopSignal) add(` StopSignal:\t${c.StopSignal}`);
  if (c.CapabilityAdd?.length) add(` Capability Add:\t${c.CapabilityAdd.join(', ')}`);
  if (c.CapabilityDrop?.length) add(` Capability Drop:\t${c.CapabilityDrop.join(', ')}`);
  if (c.Mounts?.length) {
    add('Mounts:');
    for (const m of c.Mounts) {
      add(` Target:\t${m.Target ?? ''}`);
      add(`  Source:\t${m.Source ?? ''}`);
      add(`  ReadOnly:\t${String(m.ReadOnly ?? false)}`);
      add(`  Type:\t\t${m.Type ?? ''}`);
    }
  }
  if (c.Secrets?.length) {
    add('Secrets:');
    for (const x of c.Secrets) add(` Target:\t${x.File?.Name ?? ''}\n  Source:\t${x.SecretName ?? ''}`);
  }
  if (c.Configs?.length) {
    add('Configs:');
    for (const x of c.Configs) add(` Target:\t${x.File?.Name ?? ''}\n  Source:\t${x.ConfigName ?? ''}`);
  }
  const r = t.Resources;
  const lim = r?.Limits;
  const res = r?.Reservations;
  if (lim?.NanoCPUs || lim?.MemoryBytes || lim?.Pids || res?.NanoCPUs || res?.MemoryBytes) {
    add('Resources:');
    if (res?.NanoCPUs || res?.MemoryBytes) {
      add(' Reservations:');
      if (res.NanoCPUs) add(`  CPU:\t\t${cpus(res.NanoCPUs)}`);
      if (res.MemoryBytes) add(`  Memory:\t${bytesSize(res.MemoryBytes)}`);
    }
    if (lim?.NanoCPUs || lim?.MemoryBytes || lim?.Pids) {
      add(' Limits:');
      if (lim.NanoCPUs) add(`  CPU:\t\t${cpus(lim.NanoCPUs)}`);
      if (lim.MemoryBytes) add(`  Memory:\t${bytesSize(lim.MemoryBytes)}`);
      if (lim.Pids) add(`  PIDs:\t\t${lim.Pids}`);
    }
  }
  const rp = t.RestartPolicy;
  if (rp) {
    add('RestartPolicy:');
    add(` Condition:\t${rp.Condition ?? ''}`);
    add(` Delay:\t\t${goDurationString(rp.Delay ?? 0)}`);
    add(` Max attempts:\t${rp.MaxAttempts ?? 0}`);
    if (rp.Window) add(` Window:\t${goDurationString(rp.Window)}`);
  }
  add(`Endpoint Mode:\t${spec.EndpointSpec?.Mode || 'vip'}`);
  const ports = s.Endpoint?.Ports ?? spec.EndpointSpec?.Ports ?? [];
  if (ports.length > 0) {
    add('Ports:');
    for (const port of ports) {
      add(` PublishedPort = ${port.PublishedPort ?? 0}`);
      add(`  Protocol = ${port.Protocol || 'tcp'}`);
      add(`  TargetPort = ${port.TargetPort ?? 0}`);
      add(`  PublishMode = ${port.PublishMode || 'ingress'}`);
    }
  }
  if (c.Healthcheck) {
    add('Healthcheck:');
    add(` Test:\t\t${JSON.stringify(c.Healthcheck.Test ?? [])}`);
    if (c.Healthcheck.Interval) add(` Interval:\t${goDurationString(c.Healthcheck.Interval)}`);
    if (c.Healthcheck.Timeout) add(` Timeout:\t${goDurationString(c.Healthcheck.Timeout)}`);
    if (c.Healthcheck.Retries) add(` Retries:\t${c.Healthcheck.Retries}`);
  }
  return out.join('\n') + '\n';
}
