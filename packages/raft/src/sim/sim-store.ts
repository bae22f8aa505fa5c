/**
 * The driver's LogStore over a SimDisk: writes land in the disk's volatile layer at once; a
 * synced batch completes after a virtual fsync latency (during which the node keeps stepping
 * messages). The simulator may arm a power loss in the middle of the next fsync.
 */
import type { Entry, HardState, Snapshot } from '../core/types.js';
import type { BootState, LogStore } from '../driver/log-store.js';
import type { SimDisk } from './sim-disk.js';

export interface SimStoreHooks {
  /** Runs `fn` after `ms` of virtual time in the current life of the node (held while it is paused). */
  later(ms: number, label: string, fn: () => void): void;
  /** Fsync latency of one synced batch. */
  fsyncMs(): number;
  /** A batch became durable (before the driver continues): invariant checks. */
  persisted(entries: readonly Entry[]): void;
  /** Consumed by the next synced write: power loss at a random point of its fsync. */
  takeCrashDuringSync(): ((atMs: number) => void) | undefined;
}

export class SimLogStore implements LogStore {
  readonly boot: BootState;

  constructor(
    private readonly disk: SimDisk,
    private readonly hooks: SimStoreHooks,
  ) {
    const img = disk.load();
    this.boot = {
      hardState: img.hard,
      snapshot: img.snap.metadata.index > 0 ? img.snap : undefined,
      entries: img.entries,
    };
  }

  save(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): Promise<void> {
    if (entries.length > 0) this.disk.write({ kind: 'entries', entries });
    if (hardState !== undefined) this.disk.write({ kind: 'hard', hs: hardState });
    if (!mustSync) {
      this.hooks.persisted(entries);
      return Promise.resolve();
    }
    const delay = this.hooks.fsyncMs();
    this.hooks.takeCrashDuringSync()?.(delay);
    return new Promise<void>((resolve) => {
      this.hooks.later(delay, 'fsync', () => {
        this.disk.fsync();
        this.hooks.persisted(entries);
        resolve();
      });
    });
  }

  /** Snapshot files are written with tmp + fsync + rename: durable at once. */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.disk.write({ kind: 'snap', snap: snapshot });
    this.disk.fsync();
    return Promise.resolve();
  }

  releaseTo(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
