/**
 * The simulator's tiny replicated KV state machine: put/delete/cas commands with client
 * deduplication (client id + sequence), deterministic apply, JSON snapshots.
 */
export interface KvCommand {
  readonly c: number; // client id
  readonly s: number; // client sequence
  readonly op: 'put' | 'delete' | 'cas';
  readonly k: string;
  readonly v?: string;
  readonly e?: string | null;
}

export interface KvApplyResult {
  readonly ok: boolean;
  readonly duplicate: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeCommand(c: KvCommand): Uint8Array {
  return enc.encode(JSON.stringify(c));
}

export function decodeCommand(b: Uint8Array): KvCommand {
  return JSON.parse(dec.decode(b)) as KvCommand;
}

export class KvMachine {
  data = new Map<string, string>();
  lastSeq = new Map<number, number>();

  apply(cmd: KvCommand): KvApplyResult {
    const last = this.lastSeq.get(cmd.c) ?? 0;
    if (cmd.s <= last) return { ok: false, duplicate: true };
    this.lastSeq.set(cmd.c, cmd.s);
    switch (cmd.op) {
      case 'put':
        this.data.set(cmd.k, cmd.v ?? '');
        return { ok: true, duplicate: false };
      case 'delete':
        this.data.delete(cmd.k);
        return { ok: true, duplicate: false };
      case 'cas': {
        const cur = this.data.get(cmd.k) ?? null;
        if (cur !== (cmd.e ?? null)) return { ok: false, duplicate: false };
        this.data.set(cmd.k, cmd.v ?? '');
        return { ok: true, duplicate: false };
      }
    }
  }

  get(k: string): string | null {
    return this.data.get(k) ?? null;
  }

  snapshot(): Uint8Array {
    return enc.encode(this.fingerprint());
  }

  restore(b: Uint8Array): void {
    this.data = new Map();
    this.lastSeq = new Map();
    if (b.byteLength === 0) return;
    const o = JSON.parse(dec.decode(b)) as { d: [string, string][]; l: [number, number][] };
    this.data = new Map(o.d);
    this.lastSeq = new Map(o.l);
  }

  /** A canonical string of the whole state (for convergence checks and snapshots). */
  fingerprint(): string {
    const d = [...this.data].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const l = [...this.lastSeq].sort((a, b) => a[0] - b[0]);
    return JSON.stringify({ d, l });
  }
}
