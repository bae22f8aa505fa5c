/**
 * Faults for tests: `cut`/`heal` a host's underlay link (its bridge-side veth end down/up) and
 * `delay`/loss on the packets a host sends (netem, or the relay of lab-relay.ts and an nftables
 * loss rule on kernels without netem).
 */
import { run } from '@shoal/common';
import { LabCommandError, LabNotRootError } from '../errors.js';
import { withLock } from './lab-lock.js';
import { startRelay, stopRelay } from './lab-relay.js';
import {
  labDir,
  labLockPath,
  requireHost,
  requireLab,
  writeLabState,
  type LabHostState,
  type LabState,
} from './lab-state.js';
import { cmdline, isRoot, linkExists, pidsWithCmdline, sh } from './lab-system.js';

async function faultTarget(lab: string, host: string, op: string): Promise<LabHostState> {
  const s = await requireLab(lab);
  const h = requireHost(s, host);
  if (!isRoot()) throw new LabNotRootError(op);
  return h;
}

/** Takes a host's underlay link down (its bridge-side veth): the host is cut off. */
export async function labCut(lab: string, host: string): Promise<void> {
  const h = await faultTarget(lab, host, 'cut');
  if (await linkExists(h.veth)) await sh('ip', ['link', 'set', h.veth, 'down']);
}

/** Brings a host's underlay link back up. */
export async function labHeal(lab: string, host: string): Promise<void> {
  const h = await faultTarget(lab, host, 'heal');
  await sh('ip', ['link', 'set', h.veth, 'up']);
}

async function netemOf(h: LabHostState): Promise<string | undefined> {
  const r = await run('tc', ['-n', h.netns, 'qdisc', 'show', 'dev', 'eth0'], { check: false });
  const m = /netem \d+: \S+ (?:refcnt \d+ )?limit \d+ ?(.*)/.exec(r.stdout);
  return m?.[1]?.trim() || undefined;
}

/** The nftables table a host uses for packet loss when the kernel has no netem. */
const LOSS_TABLE = 'shoal_fault';

async function netemAvailable(h: LabHostState): Promise<boolean> {
  // Probe on the host's loopback-free dummy path: adding and removing netem on eth0 itself.
  const r = await run('tc', ['-n', h.netns, 'qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', '0ms'], {
    check: false,
  });
  if (r.code === 0) return true;
  if (/unknown/i.test(r.stderr)) return false;
  throw new LabCommandError(h.netns, 'tc qdisc replace netem', { cause: new Error(r.stderr.trim()) });
}

async function clearFaults(s: LabState, h: LabHostState): Promise<void> {
  await run('tc', ['-n', h.netns, 'qdisc', 'del', 'dev', 'eth0', 'root'], { check: false });
  await run('nsenter', [`--net=/run/netns/${h.netns}`, 'nft', 'delete', 'table', 'inet', LOSS_TABLE], { check: false });
  await stopRelay(s, h, pidsWithCmdline(labDir(s.name)));
}

/** Loss set through nftables (`numgen random`) in the host, if any. */
async function nftLoss(h: LabHostState): Promise<number | undefined> {
  const r = await run('nsenter', [`--net=/run/netns/${h.netns}`, 'nft', 'list', 'table', 'inet', LOSS_TABLE], {
    check: false,
  });
  if (r.code !== 0) return undefined;
  const m = /numgen random mod 100 < (\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : /oifname "eth0" drop/.test(r.stdout) ? 100 : undefined;
}

/** A short description of the faults on a host's link (`delay 80ms (relay)`, `loss 5%`), if any. */
export async function faultSummary(h: LabHostState): Promise<string | undefined> {
  if (h.fault?.via === 'relay' && h.fault.relayPid && cmdline(h.fault.relayPid)) {
    return `delay ${h.fault.delayMs}ms${h.fault.lossPct ? ` loss ${h.fault.lossPct}%` : ''} (relay)`;
  }
  const loss = await nftLoss(h);
  if (loss !== undefined) return `loss ${loss}%`;
  return netemOf(h);
}

/**
 * Adds `ms` of delay and `lossPct` % loss to every packet the host sends on the underlay. Uses
 * netem on the host's eth0 where the kernel has it; otherwise a delay goes through a relay
 * process (lab-relay.ts) and loss alone through an nftables rule in the host
 * (`numgen random mod 100 < PCT drop`). `ms` 0 without loss removes every fault.
 */
export async function labDelay(lab: string, host: string, ms: number, lossPct = 0): Promise<void> {
  const s0 = await requireLab(lab);
  requireHost(s0, host);
  if (!isRoot()) throw new LabNotRootError('delay');
  await withLock(labLockPath(lab), lab, async () => {
    const s = await requireLab(lab);
    const h = requireHost(s, host);
    await clearFaults(s, h);
    delete h.fault;
    if (ms > 0 || lossPct > 0) {
      if (await netemAvailable(h)) {
        const args = ['-n', h.netns, 'qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', `${ms}ms`];
        if (lossPct > 0) args.push('loss', `${lossPct}%`);
        await sh('tc', args);
        h.fault = { delayMs: ms, lossPct, via: 'netem' };
      } else if (ms > 0) {
        const relayPid = await startRelay(s, h, ms, lossPct);
        h.fault = { delayMs: ms, lossPct, via: 'relay', relayPid };
      } else {
        await run('tc', ['-n', h.netns, 'qdisc', 'del', 'dev', 'eth0', 'root'], { check: false });
        const pct = Math.round(lossPct);
        const match = pct >= 100 ? '' : `numgen random mod 100 < ${pct} `;
        const rules = `table inet ${LOSS_TABLE} {\n chain out {\n  type filter hook output priority 0; policy accept;\n  oifname "eth0" ${match}drop\n }\n}\n`;
        await run('nsenter', [`--net=/run/netns/${h.netns}`, 'nft', '-f', '-'], { input: rules });
        h.fault = { delayMs: 0, lossPct, via: 'nft' };
      }
    }
    await writeLabState(s);
  });
}
