/**
 * What the main thread and the DNS thread (dns-thread.ts, dns-thread-main.ts) say to each other
 * over the worker's message port. The main thread keeps the truth (names, scopes); the thread
 * gets it as changes, in order, and answers queries from its own copy.
 */

/** Given to the thread when it starts. */
export interface DnsThreadData {
  address: string;
  port: number;
  upstreams: string[];
  ttl?: number;
  forwardTimeoutMs?: number;
  /** The parent logger's level and bindings: the thread logs as it does (to stderr). */
  logLevel: string;
  logBindings: Record<string, unknown>;
}

export interface DnsThreadRecord {
  name: string;
  address: string;
}

/** Main thread -> DNS thread. */
export type DnsThreadCommand =
  /** A network's records, and its name (for `<name>.<network name>`). */
  | { op: 'network'; id: string; name?: string; records: DnsThreadRecord[] }
  | { op: 'remove-network'; id: string }
  | { op: 'scope'; client: string; networks: string[] }
  | { op: 'drop-scope'; client: string }
  /** Answered with `settled` once every earlier command is applied. */
  | { op: 'settle'; seq: number }
  | { op: 'close' };

/** DNS thread -> main thread. */
export type DnsThreadEvent =
  | { type: 'listening'; address: string; port: number }
  | { type: 'listen-failed'; code: string | undefined; message: string }
  | { type: 'settled'; seq: number }
  | { type: 'closed' };
