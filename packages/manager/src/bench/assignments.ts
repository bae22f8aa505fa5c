/**
 * `npm run bench -- assignments`: what a deploy costs in assignment messages once tasks carry
 * overlay network states. One manager on an in-memory store (LocalLog) with its orchestrator,
 * allocator, scheduler and dispatcher running; 5 worker nodes open real dispatcher sessions and
 * assignments streams (the handlers, without gRPC), and report their tasks running through the
 * dispatcher's batched UpdateTaskStatus. A service of 100 replicas on one overlay network is
 * deployed until every node holds a network state with all 100 endpoints running. Figures:
 * messages and network updates per node, bytes of network state per node (protobuf), network
 * state rebuilds, and the deploy time. Ends with one JSON line. Addresses: 198.18/15 only, and
 * nothing is sent anywhere.
 */
import { performance } from 'node:perf_hooks';
import { AssignmentsMessage, type NetworkState } from '@shoal/api';
import { activeOf, servicesRig, setNode } from '../orchestrator/test-rig.js';
import { settle } from '../test-support.js';
import { ShoalError } from '@shoal/common';

/**
 * The end of a session or assignments stream this code opened: a typed error (the dispatcher
 * stopped, not the leader, the session replaced) is how such a stream ends when the rig stops;
 * anything else is a bug and is rethrown.
 */
function streamEnded(err: unknown): undefined {
  if (err instanceof ShoalError) return undefined;
  throw err;
}

const NODES = ['w1', 'w2', 'w3', 'w4', 'w5'];
const REPLICAS = Number(process.argv[2] ?? 100);

interface Seen {
  messages: number;
  networkUpdates: number;
  networkBytes: number;
  tasks: Set<string>;
  networks: Map<string, NetworkState>;
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`never happened: ${what}`);
}

async function main(): Promise<void> {
  const r = await servicesRig(NODES, { defaultAddrPool: ['198.19.128.0/17'], subnetSize: 24, ingress: true });
  const ac = new AbortController();
  try {
    for (const [i, w] of NODES.entries()) {
      await setNode(r.store, w, (n) => ({ ...n, Status: { ...n.Status, Addr: `198.18.0.${11 + i}` } }));
    }
    r.manager.allocator.start();
    r.manager.scheduler.start();
    await r.manager.networksApi.createNetwork({
      Spec: {
        Name: 'bench',
        DriverConfiguration: { Name: 'overlay' },
        // Room for 4000 tasks (`npm run bench -- assignments 4000`).
        IPAMOptions: { Configs: [{ Subnet: '198.19.160.0/20' }] },
      },
    });
    const d = r.manager.dispatcher;
    const seen = new Map<string, Seen>();
    const sessions = new Map<string, string>();
    for (const [i, w] of NODES.entries()) {
      const caller = { nodeId: w, role: 'worker' as const, addr: `198.18.0.${11 + i}` };
      void d
        .session({ Description: { Hostname: w } }, caller, (m) => sessions.set(w, m.SessionID ?? ''), ac.signal)
        .catch(streamEnded);
      await until(`session of ${w}`, () => (sessions.get(w) ?? '') !== '');
      const s: Seen = { messages: 0, networkUpdates: 0, networkBytes: 0, tasks: new Set(), networks: new Map() };
      seen.set(w, s);
      void d
        .assignments(
          { SessionID: sessions.get(w) ?? '' },
          caller,
          (m) => {
            s.messages++;
            for (const c of m.Changes ?? []) {
              const a = c.Assignment;
              if (a?.Task?.ID !== undefined) {
                if (c.Action === 'remove') s.tasks.delete(a.Task.ID);
                else s.tasks.add(a.Task.ID);
              }
              if (a?.Network !== undefined) {
                const id = a.Network.Network?.ID ?? '';
                if (c.Action === 'remove') s.networks.delete(id);
                else {
                  s.networkUpdates++;
                  s.networkBytes += AssignmentsMessage.encode({ Changes: [c] }).finish().length;
                  s.networks.set(id, a.Network);
                }
              }
            }
          },
          ac.signal,
        )
        .catch(streamEnded);
    }
    await settle();
    const base = new Map([...seen].map(([w, s]) => [w, { ...s }]));
    const rebuilds = d.networks.rebuilds;
    const t0 = performance.now();
    const svc = await r.manager.servicesApi.createService({
      Spec: {
        Name: 'web',
        TaskTemplate: {
          ContainerSpec: { Image: 'busybox:1' },
          Networks: [{ Target: 'bench' }],
          Placement: { Constraints: ['node.role==worker'] },
        },
        Mode: { Replicated: { Replicas: REPLICAS } },
      },
    });
    const total = (): number => [...seen.values()].reduce((n, s) => n + s.tasks.size, 0);
    await until('every task reaches its node', () => total() === REPLICAS);
    // Each node reports its tasks running: one call per node, batched by the dispatcher.
    await Promise.all(
      NODES.map((w) =>
        d.updateTaskStatus(
          {
            SessionID: sessions.get(w) ?? '',
            Updates: [...(seen.get(w)?.tasks ?? [])].map((id) => ({ TaskID: id, Status: { State: 'running' } })),
          },
          { nodeId: w, role: 'worker', addr: '' },
        ),
      ),
    );
    const benchState = (s: Seen): NetworkState | undefined =>
      [...s.networks.values()].find((n) => n.Network?.Spec?.Name === 'bench');
    await until('every node holds 100 running endpoints', () =>
      [...seen.values()].every((s) => {
        const eps = benchState(s)?.Endpoints ?? [];
        return eps.length === REPLICAS && eps.every((e) => e.Running === true);
      }),
    );
    const deployMs = performance.now() - t0;
    const per = (f: (s: Seen, b: Seen) => number): number =>
      [...seen].reduce((n, [w, s]) => n + f(s, base.get(w) ?? s), 0) / NODES.length;
    const running = activeOf(r.store, svc.ID ?? '').filter((t) => t.Status?.State === 'running').length;
    const figures = {
      tasks: REPLICAS,
      nodes: NODES.length,
      running,
      messages_per_node: per((s, b) => s.messages - b.messages),
      network_updates_per_node: per((s, b) => s.networkUpdates - b.networkUpdates),
      network_bytes_per_node: Math.round(per((s, b) => s.networkBytes - b.networkBytes)),
      network_state_rebuilds: d.networks.rebuilds - rebuilds,
      store_revisions: r.store.revision,
      deploy_ms: Math.round(deployMs),
    };
    console.error(
      `${REPLICAS} tasks on ${NODES.length} nodes: ${figures.messages_per_node} messages and ${figures.network_updates_per_node} network updates per node`,
    );
    console.log(JSON.stringify(figures));
  } finally {
    ac.abort();
    r.close();
  }
}

await main();
