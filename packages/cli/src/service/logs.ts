/**
 * `shoal service logs SERVICE|TASK`: the task logs of a service (or of one task) from every node
 * that ran them, through the local manager's LogBroker (SubscribeLogs; see docs/manager.md).
 * Lines are printed as docker's: `[TIMESTAMP ]<service>.<slot>.<task id>@<node>    | <line>`,
 * stdout lines on stdout and stderr lines on stderr. A node the broker cannot reach is a warning
 * line on stderr, and the other nodes' logs still come.
 */
import { credentials } from '@grpc/grpc-js';
import {
  LogBrokerClient,
  serverStream,
  type LogMessage,
  type LogSelector,
  type Node,
  type Service,
  type Task,
} from '@shoal/api';
import { InvalidArgumentError, ShoalError } from '@shoal/common';
import type { Command } from 'commander';
import { daemonAction } from '../daemon/action.js';
import { DaemonUnreachableError, type DaemonClient } from '../daemon/client.js';

export interface LogsFlags {
  follow?: boolean;
  tail: string;
  timestamps?: boolean;
  since?: string;
  taskIds: boolean;
  trunc: boolean;
  resolve: boolean;
  raw?: boolean;
}

/** Neither a service nor a task has that name or ID (docker's message). */
export class NoSuchTaskOrServiceError extends ShoalError {
  constructor(ref: string) {
    super('CLI_NO_SUCH_TASK_OR_SERVICE', `no such task or service: ${ref}`, { kind: 'not-found' });
  }
}

/** `--tail`: "all" (every line, -1) or a non-negative number of lines. */
export function parseTail(v: string): number {
  if (v === 'all') return -1;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new InvalidArgumentError(
      `invalid value for --tail: ${JSON.stringify(v)}: expected a number of lines or "all"`,
    );
  return Number(v);
}

const UNIT_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/**
 * `--since` as docker takes it: an RFC 3339 date or time (`2026-11-29`, `2026-11-29T04:10:00Z`),
 * unix seconds (`1764389400.5`), or a duration before `now` (`10m`, `1h30m`, `90s`). Returns
 * an RFC 3339 UTC time.
 */
export function parseSince(v: string, now = Date.now()): string {
  const bad = (): never => {
    throw new InvalidArgumentError(
      `invalid value for --since: ${JSON.stringify(v)}: expected a timestamp (2026-11-29T04:10:00Z), unix seconds or a duration such as 10m`,
    );
  };
  if (v === '') bad();
  if (/^\d+(\.\d+)?$/.test(v)) return new Date(Number(v) * 1000).toISOString();
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    let ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    return new Date(now - ms).toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) {
    const t = Date.parse(v.replace(' ', 'T'));
    if (!Number.isNaN(t)) return new Date(t).toISOString();
  }
  return bad();
}

/** The prefix docker puts before a line: `<service>[.<slot>][.<task id>]@<node>    | `. */
export function linePrefix(
  o: { taskIds: boolean; trunc: boolean },
  serviceName: string,
  task: Pick<Task, 'ID' | 'Slot'> | undefined,
  taskId: string,
  nodeName: string,
): string {
  let name = serviceName;
  if ((task?.Slot ?? 0) > 0) name += `.${task!.Slot}`;
  if (o.taskIds) name += `.${o.trunc ? taskId.slice(0, 12) : taskId}`;
  return `${name}@${nodeName}    | `;
}

/** What the command subscribes to, resolved from SERVICE|TASK. */
async function resolveTarget(c: DaemonClient, ref: string): Promise<{ selector: LogSelector; services: Service[] }> {
  try {
    const s = (await c.control.getService({ ServiceID: ref })).Service;
    if (s?.ID) return { selector: { ServiceIDs: [s.ID], TaskIDs: [] }, services: [s] };
  } catch (err) {
    if (!(err instanceof ShoalError && err.kind === 'not-found')) throw err;
  }
  try {
    const t = (await c.control.getTask({ TaskID: ref })).Task;
    if (t?.ID) {
      const s = (await c.control.getService({ ServiceID: t.ServiceID ?? '' })).Service;
      return { selector: { ServiceIDs: [], TaskIDs: [t.ID] }, services: s ? [s] : [] };
    }
  } catch (err) {
    if (!(err instanceof ShoalError && err.kind === 'not-found')) throw err;
  }
  throw new NoSuchTaskOrServiceError(ref);
}

function write(stream: NodeJS.WritableStream, text: string | Buffer): Promise<void> {
  if (stream.write(text)) return Promise.resolve();
  return new Promise((resolve) => stream.once('drain', resolve));
}

export async function serviceLogs(c: DaemonClient, ref: string, o: LogsFlags): Promise<void> {
  const tail = parseTail(o.tail);
  const since = o.since === undefined ? '' : parseSince(o.since);
  const { selector, services } = await resolveTarget(c, ref);

  const serviceNames = new Map(services.map((s) => [s.ID ?? '', s.Spec?.Name ?? '']));
  const tasks = new Map<string, Task>();
  const nodes = new Map<string, Node>();
  if (!o.raw) {
    const filters =
      selector.ServiceIDs!.length > 0 ? { ServiceIDs: selector.ServiceIDs! } : { IDPrefixes: selector.TaskIDs! };
    for (const t of (await c.control.listTasks({ Filters: filters })).Tasks ?? []) tasks.set(t.ID ?? '', t);
    for (const n of (await c.control.listNodes({})).Nodes ?? []) nodes.set(n.ID ?? '', n);
  }
  const taskOf = async (id: string): Promise<Task | undefined> => {
    if (!tasks.has(id)) {
      try {
        const t = (await c.control.getTask({ TaskID: id })).Task;
        if (t) tasks.set(id, t);
      } catch (err) {
        if (!(err instanceof ShoalError && err.kind === 'not-found')) throw err;
      }
    }
    return tasks.get(id);
  };
  const nodeName = (id: string): string => {
    if (!o.resolve) return id;
    const n = nodes.get(id);
    return n?.Description?.Hostname || n?.Spec?.Name || id;
  };
  const serviceName = (id: string): string => (o.resolve ? serviceNames.get(id) || id : id);

  const format = async (m: LogMessage): Promise<string> => {
    let head = o.timestamps ? `${m.Timestamp ?? ''} ` : '';
    if (!o.raw) {
      const ctx = m.Context ?? {};
      const taskId = ctx.TaskID ?? '';
      head += linePrefix(o, serviceName(ctx.ServiceID ?? ''), await taskOf(taskId), taskId, nodeName(ctx.NodeID ?? ''));
    }
    return head;
  };

  const client = new LogBrokerClient(c.host, credentials.createInsecure());
  try {
    const stream = serverStream(client.subscribeLogs.bind(client), {
      Selector: selector,
      Options: { Follow: o.follow === true, Tail: tail, Since: since },
    });
    for await (const msg of stream) {
      for (const e of msg.NodeErrors ?? [])
        await write(process.stderr, `warning: ${e.Message ?? e.NodeID ?? ''}: its logs are skipped\n`);
      for (const m of msg.Messages ?? []) {
        const out = m.Stream === 'stderr' ? process.stderr : process.stdout;
        const data = Buffer.from(m.Data ?? []);
        await write(out, Buffer.concat([Buffer.from(await format(m)), data, Buffer.from(m.Complete ? '\n' : '')]));
      }
    }
  } catch (err) {
    if (err instanceof ShoalError && err.code === 'GRPC_UNAVAILABLE') throw new DaemonUnreachableError(c.host);
    throw err;
  } finally {
    client.close();
  }
}

/** Adds `service logs` to the `service` command. */
export function registerServiceLogs(service: Command): void {
  service
    .command('logs')
    .description('Fetch the logs of a service or task')
    .argument('<service|task>')
    .option('-f, --follow', 'follow log output')
    .option('-n, --tail <n>', 'number of lines to show from the end of the logs ("all" for every line)', 'all')
    .option('-t, --timestamps', 'show timestamps')
    .option('--since <time>', 'show logs since a timestamp (e.g. 2026-11-29T04:10:00Z) or relative (e.g. 42m)')
    .option('--no-task-ids', 'do not include task IDs in the output')
    .option('--no-trunc', 'do not truncate output')
    .option('--no-resolve', 'do not map IDs to names in the output')
    .option('--raw', 'do not neatly format logs')
    .action(daemonAction(async (c, ref: string, o: LogsFlags) => serviceLogs(c, ref, o)));
}
