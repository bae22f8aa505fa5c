/**
 * The one firewall rule a lab may need. Where Docker has run, the root FORWARD policy is DROP and
 * br_netfilter passes bridged frames through iptables, so frames between lab hosts would be
 * dropped. An accept rule in a table of our own would not help (every base chain must accept),
 * so the rule goes into iptables' FORWARD chain itself, tagged with a comment naming the lab, and
 * `down` deletes exactly the rules carrying that comment. Without iptables there is nothing to do.
 */
import { run } from '@shoal/common';
import { tryRun } from './lab-system.js';

export function firewallComment(lab: string): string {
  return `shoal-lab:${lab}`;
}

async function haveIptables(): Promise<boolean> {
  return tryRun('iptables', ['--version']);
}

function ruleArgs(bridge: string, comment: string): string[] {
  return ['FORWARD', '-i', bridge, '-o', bridge, '-m', 'comment', '--comment', comment, '-j', 'ACCEPT'];
}

/** Adds the lab's accept rule unless it is there; returns the comment, or undefined without iptables. */
export async function allowBridge(lab: string, bridge: string): Promise<string | undefined> {
  if (!(await haveIptables())) return undefined;
  const comment = firewallComment(lab);
  if (await tryRun('iptables', ['-w', '-C', ...ruleArgs(bridge, comment)])) return comment;
  await run('iptables', [
    '-w',
    '-I',
    ...ruleArgs(bridge, comment).slice(0, 1),
    '1',
    ...ruleArgs(bridge, comment).slice(1),
  ]);
  return comment;
}

/** FORWARD rules (as `iptables -S` prints them) tagged with the lab's comment. */
export async function labRules(lab: string): Promise<string[]> {
  if (!(await haveIptables())) return [];
  const r = await run('iptables', ['-w', '-S', 'FORWARD'], { check: false });
  if (r.code !== 0) return [];
  const comment = firewallComment(lab);
  return r.stdout
    .split('\n')
    .filter((line) => line.startsWith('-A FORWARD '))
    .filter((line) => {
      const words = line.split(/\s+/);
      const i = words.indexOf('--comment');
      return i >= 0 && words[i + 1]?.replace(/^"|"$/g, '') === comment;
    });
}

/** Deletes every FORWARD rule tagged with the lab's comment. */
export async function removeLabRules(lab: string): Promise<number> {
  let removed = 0;
  for (const rule of await labRules(lab)) {
    const args = rule
      .replace(/^-A /, '')
      .split(/\s+/)
      .map((w) => w.replace(/^"|"$/g, ''));
    if (await tryRun('iptables', ['-w', '-D', ...args])) removed++;
  }
  return removed;
}
