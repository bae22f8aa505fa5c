/**
 * Reading a container's log files as the shim writes them:
 *
 *   <RFC3339Nano UTC> <stdout|stderr> <F|P> <bytes>\n
 *
 * in `container.log`, rotated by size to `container.log.1` (newer) ... `.N` (oldest). `readLogs`
 * yields entries oldest first, with `tail` (last N entries), `since` (time filter) and `follow`
 * (keep reading across rotations until the container has exited and its log is drained, or the
 * signal aborts).
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, readdir, stat, access, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode, ignoreErrno } from '@shoal/common';

export interface LogEntry {
  /** RFC3339 with nanoseconds, UTC. */
  time: string;
  stream: 'stdout' | 'stderr';
  /** True when the line continues in the next entry (or the stream ended without a newline). */
  partial: boolean;
  line: Buffer;
}

export interface ReadLogsOptions {
  follow?: boolean;
  /** Only the last N entries (before following). */
  tail?: number;
  /** Only entries at or after this time (Date, RFC3339 string or unix seconds). */
  since?: Date | string | number;
  signal?: AbortSignal;
  /** Follow ends when this file exists and the log is drained (the shim writes it last). */
  doneFile?: string;
}

const NL = 0x0a;

/** Parses one record; undefined for a malformed line. */
export function parseLogLine(buf: Buffer): LogEntry | undefined {
  const s1 = buf.indexOf(0x20);
  const s2 = buf.indexOf(0x20, s1 + 1);
  const s3 = buf.indexOf(0x20, s2 + 1);
  if (s1 < 0 || s2 < 0 || s3 < 0) return undefined;
  const stream = buf.toString('latin1', s1 + 1, s2);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  return { time: buf.toString('latin1', 0, s1), stream, partial: buf[s2 + 1] === 0x50, line: buf.subarray(s3 + 1) };
}

/** A UTC RFC3339Nano string comparable with log timestamps. */
export function sinceKey(since: Date | string | number): string {
  let d: Date;
  if (since instanceof Date) d = since;
  else if (typeof since === 'number' || /^\d+(\.\d+)?$/.test(since)) d = new Date(Number(since) * 1000);
  else d = new Date(since);
  if (Number.isNaN(d.getTime())) throw new RangeError(`invalid time ${String(since)}`);
  return d.toISOString().replace('Z', '000000Z');
}

/** The log files, oldest first. */
export async function logFiles(path: string): Promise<string[]> {
  const dir = dirname(path);
  const base = basename(path);
  const rotated = ((await readdir(dir).catch(ignoreErrno('ENOENT'))) ?? [])
    .map((n) => (n.startsWith(`${base}.`) ? Number(n.slice(base.length + 1)) : NaN))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => b - a);
  return [...rotated.map((n) => `${path}.${n}`), path];
}

/** Reads complete lines from a file handle from an offset on; keeps an unfinished tail. */
class LineReader {
  private rest = Buffer.alloc(0);
  private pos = 0;
  private readonly buf = Buffer.alloc(256 * 1024);

  constructor(readonly fh: FileHandle) {}

  async *lines(): AsyncGenerator<Buffer> {
    for (;;) {
      const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, this.pos);
      if (bytesRead === 0) return;
      this.pos += bytesRead;
      const data = this.rest.length
        ? Buffer.concat([this.rest, this.buf.subarray(0, bytesRead)])
        : this.buf.subarray(0, bytesRead);
      let start = 0;
      for (let i = data.indexOf(NL); i >= 0; i = data.indexOf(NL, start)) {
        yield Buffer.from(data.subarray(start, i));
        start = i + 1;
      }
      this.rest = Buffer.from(data.subarray(start));
    }
  }
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** Yields the container's log entries (see module doc). */
export async function* readLogs(path: string, opts: ReadLogsOptions = {}): AsyncGenerator<LogEntry> {
  const since = opts.since === undefined ? undefined : sinceKey(opts.since);
  const keep = (e: LogEntry | undefined): e is LogEntry => !!e && (since === undefined || e.time >= since);
  const files = await logFiles(path);
  const ring: LogEntry[] = [];
  const tail = opts.tail;
  let current: { fh: FileHandle; reader: LineReader; ino: number } | undefined;
  try {
    // 1. what is there now
    for (const f of files) {
      let fh: FileHandle;
      try {
        fh = await open(f, 'r');
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue; // rotated away since the listing
        throw err;
      }
      const reader = new LineReader(fh);
      for await (const l of reader.lines()) {
        const e = parseLogLine(l);
        if (!keep(e)) continue;
        if (tail === undefined) yield e;
        else if (tail > 0) {
          ring.push(e);
          if (ring.length > tail) ring.shift();
        }
      }
      if (f === path) current = { fh, reader, ino: (await fh.stat()).ino };
      else await fh.close();
    }
    for (const e of ring) yield e;
    if (!opts.follow) return;

    // 2. follow: new lines, across rotations, until the container is done
    let watcher: FSWatcher | undefined;
    let wake: (() => void) | undefined;
    try {
      watcher = watch(dirname(path), () => wake?.());
      // the dir went away (container removed): wake the loop, which then sees it is gone
      watcher.on('error', () => wake?.());
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      watcher = undefined; // the dir is gone: the container was removed; the loop below ends
    }
    try {
      for (;;) {
        if (opts.signal?.aborted) return;
        const done = opts.doneFile ? await exists(opts.doneFile) : false;
        if (current) {
          for await (const l of current.reader.lines()) {
            const e = parseLogLine(l);
            if (keep(e)) yield e;
          }
        }
        // rotated away? finish the old file (done above) and move to the new one
        const st = await stat(path).catch(ignoreErrno('ENOENT'));
        if (st && (!current || st.ino !== current.ino)) {
          await current?.fh.close();
          const fh = await open(path, 'r');
          current = { fh, reader: new LineReader(fh), ino: (await fh.stat()).ino };
          continue;
        }
        if (done) return;
        if (!(await exists(dirname(path)))) return;
        await new Promise<void>((resolve) => {
          const finish = (): void => {
            clearTimeout(t);
            opts.signal?.removeEventListener('abort', finish);
            wake = undefined;
            resolve();
          };
          const t = setTimeout(finish, 250);
          opts.signal?.addEventListener('abort', finish, { once: true });
          wake = finish;
        });
      }
    } finally {
      watcher?.close();
    }
  } finally {
    await current?.fh.close();
  }
}

/** `join` re-exported for callers that build log paths. */
export const logPathIn = (dir: string): string => join(dir, 'container.log');
