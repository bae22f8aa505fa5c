/**
 * Delay without netem. Some kernels (this project's VMs) are built without the netem qdisc, so a
 * host's delay comes from a small relay process instead: the host's bridge-side veth end leaves
 * the bridge, a second veth pair (`sd<tag>-N` in the bridge, `sr<tag>-N` for the relay) takes its
 * place, and the relay copies frames between the two with packet sockets, holding those the host
 * sent for `ms` milliseconds (and dropping `loss` percent). PACKET_VNET_HDR keeps checksum offload
 * and GSO metadata with each frame, so TCP works through it unchanged. The relay is Python
 * (python3-minimal), started detached; its command line names the lab directory, so `down` finds it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ignoreErrno, sleep } from '@shoal/common';
import { LabCommandError, LabFaultUnsupportedError } from '../errors.js';
import { labTag } from './lab-names.js';
import { labDir, type LabHostState, type LabState } from './lab-state.js';
import { cmdline, killPids, linkExists, sh, tryRun } from './lab-system.js';

const RELAY_SOURCE = `
import heapq, random, select, signal, socket, sys, time
SOL_PACKET, PACKET_VNET_HDR, PACKET_OUTGOING = 263, 15, 4
def open_if(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((name, 0))
    s.setblocking(False)
    return s
host_if, bridge_if, delay, loss, ready = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000, float(sys.argv[4]), sys.argv[5]
a, b = open_if(host_if), open_if(bridge_if)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
open(ready, "w").close()
queue, seq = [], 0
while True:
    timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
    readable, _, _ = select.select([a, b], [], [], timeout)
    for s in readable:
        while True:
            try:
                data, addr = s.recvfrom(70000)
            except OSError:
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            if s is a:
                if loss > 0 and random.random() * 100 < loss:
                    continue
                seq += 1
                heapq.heappush(queue, (time.monotonic() + delay, seq, data))
            else:
                try:
                    a.send(data)
                except OSError:
                    pass
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        try:
            b.send(heapq.heappop(queue)[2])
        except OSError:
            pass
`;

/** The two extra veth ends a relayed host uses. */
export function relayLinks(lab: string, index: number): { bridgeSide: string; relaySide: string } {
  const tag = labTag(lab);
  return { bridgeSide: `sd${tag}-${index}`, relaySide: `sr${tag}-${index}` };
}

function python(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

function relayFiles(s: LabState, h: LabHostState): { script: string; ready: string } {
  return { script: join(labDir(s.name), 'relay.py'), ready: join(h.runDir, 'relay.ready') };
}

/** Pids of the relay of one host (by command line). */
export function relayPids(s: LabState, h: LabHostState, pids: readonly number[]): number[] {
  const { script } = relayFiles(s, h);
  return pids.filter((p) => {
    const c = cmdline(p);
    return !!c && c.includes(script) && c.includes(` ${h.veth} `);
  });
}

async function noL3(link: string): Promise<void> {
  // No ARP replies or IPv6 from the root namespace on these ends: they only carry bridged frames.
  await sh('ip', ['link', 'set', link, 'arp', 'off']);
  // a kernel without IPv6 has no such file
  await writeFile(`/proc/sys/net/ipv6/conf/${link}/disable_ipv6`, '1').catch(ignoreErrno('ENOENT'));
}

/** Puts a relay with `ms` delay and `loss` % loss between a host and the bridge. */
export async function startRelay(s: LabState, h: LabHostState, ms: number, loss: number): Promise<number> {
  const { bridgeSide, relaySide } = relayLinks(s.name, h.index);
  const { script, ready } = relayFiles(s, h);
  if (!(await tryRun(python(), ['-c', 'import socket; socket.AF_PACKET']))) {
    throw new LabFaultUnsupportedError(s.name, 'this kernel has no netem and python3 is missing for the delay relay');
  }
  try {
    await writeFile(script, RELAY_SOURCE);
    await rm(ready, { force: true });
    await sh('ip', ['link', 'add', bridgeSide, 'type', 'veth', 'peer', 'name', relaySide]);
    await noL3(relaySide);
    await sh('ip', ['link', 'set', relaySide, 'up']);
    await sh('ip', ['link', 'set', bridgeSide, 'up']);
    const child = spawn(python(), [script, h.veth, relaySide, String(ms), String(loss), ready], {
      detached: true,
      stdio: 'ignore',
    });
    child.unref();
    const pid = child.pid ?? 0;
    for (let i = 0; i < 100 && !existsSync(ready); i++) {
      if (!cmdline(pid)) throw new Error('relay exited at start');
      await sleep(20);
    }
    if (!existsSync(ready)) throw new Error('relay not ready after 2 s');
    await noL3(h.veth);
    await sh('ip', ['link', 'set', h.veth, 'nomaster']);
    await sh('ip', ['link', 'set', bridgeSide, 'master', s.bridge]);
    return pid;
  } catch (err) {
    await stopRelay(s, h, []);
    throw new LabCommandError(s.name, `starting the delay relay of ${h.name}`, { cause: err });
  }
}

/** Removes a host's relay (if any) and puts its veth end back into the bridge. */
export async function stopRelay(s: LabState, h: LabHostState, pids: readonly number[]): Promise<void> {
  const { bridgeSide } = relayLinks(s.name, h.index);
  await killPids(relayPids(s, h, pids), 1000);
  if (await linkExists(bridgeSide)) await tryRun('ip', ['link', 'del', bridgeSide]);
  if (await linkExists(h.veth)) {
    await tryRun('ip', ['link', 'set', h.veth, 'arp', 'on']);
    await tryRun('ip', ['link', 'set', h.veth, 'master', s.bridge]);
  }
}
