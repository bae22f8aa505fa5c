/**
 * `lab ls`: the status of a lab (hosts with namespace, address, link state and faults; the
 * registry) and of every lab under the lab root.
 */
import { listLinks, netnsExists } from './lab-system.js';
import { faultSummary } from './lab-faults.js';
import { listLabNames, requireLab } from './lab-state.js';

export type HostStatus = 'up' | 'cut' | 'down' | 'missing';

export interface LabHostView {
  name: string;
  hostname: string;
  netns: string;
  address: string;
  state: HostStatus;
  /** netem settings on the host's link, if any (e.g. `delay 50ms loss 10%`). */
  netem?: string;
  dataDir: string;
  runDir: string;
}

export interface LabView {
  name: string;
  subnet: string;
  gateway: string;
  bridge: string;
  registry?: { addr: string; url: string; state: 'up' | 'down' };
  hosts: LabHostView[];
}

/** The status of one lab: hosts with namespace, address and link state; the registry. */
export async function labStatus(lab: string): Promise<LabView> {
  const s = await requireLab(lab);
  const links = new Map((await listLinks()).map((l) => [l.ifname, l]));
  const hosts: LabHostView[] = [];
  for (const h of s.hosts) {
    let state: HostStatus = 'missing';
    if (netnsExists(h.netns)) {
      const root = links.get(h.veth);
      if (!root) state = 'down';
      else if (!root.flags.includes('UP')) state = 'cut';
      else state = 'up';
    }
    const netem = state === 'missing' ? undefined : await faultSummary(h);
    hosts.push({
      name: h.name,
      hostname: h.hostname,
      netns: h.netns,
      address: h.address,
      state,
      ...(netem ? { netem } : {}),
      dataDir: h.dataDir,
      runDir: h.runDir,
    });
  }
  let registry: LabView['registry'];
  if (s.registry) {
    let up: boolean;
    try {
      const res = await fetch(`${s.registry.url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      up = res.status === 200;
    } catch (err) {
      // refused, reset or no answer within the timeout: the registry is down
      if (!(err instanceof TypeError) && !(err instanceof DOMException && err.name === 'TimeoutError')) throw err;
      up = false;
    }
    registry = { addr: s.registry.addr, url: s.registry.url, state: up ? 'up' : 'down' };
  }
  return {
    name: s.name,
    subnet: s.subnet,
    gateway: s.gateway,
    bridge: s.bridge,
    ...(registry ? { registry } : {}),
    hosts,
  };
}

/** The status of every lab under the lab root. */
export async function labList(): Promise<LabView[]> {
  const out: LabView[] = [];
  for (const n of await listLabNames()) out.push(await labStatus(n));
  return out;
}
