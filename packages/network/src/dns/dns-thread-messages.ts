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
  /** The share of a second answering above which the thread says it is busy (BUSY_SHARE). */
  busyShare?: number;
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
  /** `tid`: the thread's Linux thread id (for its scheduling priority), when /proc tells it. */
  | { type: 'listening'; address: string; port: number; tid?: number }
  | { type: 'listen-failed'; code: string | undefined; message: string }
  | { type: 'settled'; seq: number }
  /**
   * How busy the thread's loop is (the share of the last second it was not waiting), sent when
   * it crosses the busy share (BUSY_SHARE) going up or CALM_RATIO of it going down: a real-time
   * thread that is busy is a flood of queries, and must not hold a CPU above every other process.
   */
  | { type: 'load'; busy: boolean; share: number }
  | { type: 'closed' };

/** Above this share of a second answering, the thread is busy (a flood); below CALM_RATIO of it, calm again. */
export const BUSY_SHARE = 0.5;
export const CALM_RATIO = 0.4;
/** How often the thread measures its load. */
export const LOAD_PERIOD_MS = 1000;
