/**
 * Chooses a lab's /24 inside 198.18.0.0/15: the block its name hashes to, or the next free one.
 * A block is taken when another lab's state records it, or when any root-namespace address or
 * route falls in it (labs under another SHOAL_LAB_ROOT, the yardstick swarm script's
 * 198.18.0.0/24, anything else). Callers hold the global allocation lock until the bridge has its
 * address, so two labs never pick the same block.
 */
import { LabSubnetExhaustedError } from '../errors.js';
import { SUBNET_BLOCKS, blockOf, preferredBlock } from './lab-names.js';
import { listLabNames, readLabState } from './lab-state.js';
import { rootAddresses } from './lab-system.js';

/** The global allocation lock (shared by every lab root on the machine). */
export const ALLOC_LOCK = '/run/shoal-lab/alloc.lock';

export async function usedBlocks(): Promise<Set<number>> {
  const used = new Set<number>([0]);
  for (const name of await listLabNames()) {
    const s = await readLabState(name);
    if (s) used.add(s.block);
  }
  for (const a of await rootAddresses()) {
    const b = blockOf(a);
    if (b !== undefined) used.add(b);
  }
  return used;
}

/** Picks a free block for a new lab. */
export async function allocateBlock(lab: string): Promise<number> {
  const used = await usedBlocks();
  const start = preferredBlock(lab);
  for (let i = 0; i < SUBNET_BLOCKS - 1; i++) {
    const b = 1 + ((start - 1 + i) % (SUBNET_BLOCKS - 1));
    if (!used.has(b)) return b;
  }
  throw new LabSubnetExhaustedError();
}
