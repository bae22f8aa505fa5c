/**
 * Everything to do inside one network namespace, in one process from the agent: `nsenter
 * --net=PATH sh` writes the interface sysctls, runs the `ip` commands as one `ip -batch` and the
 * nftables script as one `nft -f` transaction. A task sandbox is wired with one such call instead of
 * a process per command (each process costs tens of ms on a loaded node). The shell only sequences
 * the steps: the `ip` lines and the nft script reach their programs as quoted here-documents, and
 * every word of them is checked first, so nothing is interpreted by the shell.
 */
import { run } from '@shoal/common';
import { DataPlaneError } from './errors.js';

export interface NetnsScript {
  /** `net.ipv4.conf.<ifname>.<key>` style sysctls of the namespace, written before the rest. */
  sysctls?: Readonly<Record<string, string>>;
  /** `ip` commands (without `ip`), run by one `ip -batch`, which stops at the first that fails. */
  ip?: readonly (readonly string[])[];
  /** An nftables script, applied by one `nft -f` (atomic). */
  nft?: string;
}

const IP_END = 'SHOAL_IP_END';
const NFT_END = 'SHOAL_NFT_END';

/** The shell script of `s` (pure; validates). */
export function netnsShellScript(s: NetnsScript): string {
  const lines = ['set -e'];
  for (const [key, value] of Object.entries(s.sysctls ?? {})) {
    if (!/^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/.test(key) || key.split('.').includes('..'))
      throw new DataPlaneError(`sysctl "${key}" cannot be written by a namespace script`);
    if (!/^[0-9]+$/.test(value)) throw new DataPlaneError(`sysctl ${key}: value "${value}" is not a number`);
    lines.push(`echo ${value} > /proc/sys/${key.replace(/\./g, '/')}`);
  }
  if (s.ip && s.ip.length > 0) {
    for (const line of s.ip)
      for (const arg of line)
        if (arg === '' || /[\s"'\\#$`;|&<>]/.test(arg))
          throw new DataPlaneError(`argument "${arg}" cannot be passed through an ip batch`);
    lines.push(`ip -batch - <<'${IP_END}'`, ...s.ip.map((l) => l.join(' ')), IP_END);
  }
  if (s.nft !== undefined && s.nft.trim() !== '') {
    if (s.nft.split('\n').some((l) => l.trim() === NFT_END))
      throw new DataPlaneError('the nft script contains its own end marker');
    lines.push(`nft -f - <<'${NFT_END}'`, s.nft.replace(/\n+$/, ''), NFT_END);
  }
  return lines.join('\n') + '\n';
}

/** Runs `s` inside the namespace at `path` in one process; a failing step throws with its stderr. */
export async function runInNetns(path: string, s: NetnsScript): Promise<void> {
  const script = netnsShellScript(s);
  const r = await run('nsenter', [`--net=${path}`, '--', 'sh', '-c', script], { check: false });
  if (r.code !== 0)
    throw new DataPlaneError(`commands in network namespace ${path} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
}
