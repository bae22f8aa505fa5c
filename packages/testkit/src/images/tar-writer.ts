/**
 * A minimal, deterministic ustar writer for image layers: directories, regular files, symlinks
 * and hard links, all owned by 0:0 with a fixed mtime, in the order given. Whiteouts are plain
 * empty files named `.wh.<name>` (and `.wh..wh..opq` for an opaque directory), as the OCI
 * image spec's layer format defines them.
 */

/** One entry of a layer tarball. Paths are relative (`bin/sh`); directories need no slash. */
export type TarEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; mode?: number; data: Uint8Array | string }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'hardlink'; path: string; target: string };

/** The fixed modification time of every entry (2024-01-01T00:00:00Z), so layers are reproducible. */
export const TAR_MTIME = 1704067200;

const BLOCK = 512;

function writeString(buf: Buffer, offset: number, size: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > size) throw new RangeError(`tar field too long (${bytes.length} > ${size}): ${value}`);
  bytes.copy(buf, offset);
}

function writeOctal(buf: Buffer, offset: number, size: number, value: number): void {
  writeString(buf, offset, size, value.toString(8).padStart(size - 1, '0') + '\0');
}

/** Splits a long path into ustar's prefix (155) and name (100) fields. */
function splitPath(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { prefix, name };
  }
  throw new RangeError(`tar path too long for ustar: ${path}`);
}

function header(path: string, typeflag: string, mode: number, size: number, linkname: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  const { prefix, name } = splitPath(path);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, mode);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, TAR_MTIME);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  writeString(h, 156, 1, typeflag);
  writeString(h, 157, 100, linkname);
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  writeString(h, 265, 32, 'root');
  writeString(h, 297, 32, 'root');
  writeString(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

function normalise(path: string): string {
  const p = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (p === '' || p.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new RangeError(`bad tar path: '${path}'`);
  }
  return p;
}

/** Serialises entries into an uncompressed tar archive (with the two trailing zero blocks). */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const path = normalise(e.path);
    switch (e.type) {
      case 'dir':
        parts.push(header(`${path}/`, '5', e.mode ?? 0o755, 0, ''));
        break;
      case 'symlink':
        parts.push(header(path, '2', 0o777, 0, e.target));
        break;
      case 'hardlink':
        parts.push(header(path, '1', 0o644, 0, normalise(e.target)));
        break;
      case 'file': {
        const data = typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : Buffer.from(e.data);
        parts.push(header(path, '0', e.mode ?? 0o644, data.length, ''));
        parts.push(data);
        const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
        if (pad) parts.push(Buffer.alloc(pad));
        break;
      }
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** Reads back the entry names and types of a tar archive (for tests and sanity checks). */
export function listTar(tar: Uint8Array): { path: string; type: string; size: number; linkname: string }[] {
  const buf = Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength);
  const out: { path: string; type: string; size: number; linkname: string }[] = [];
  let off = 0;
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    const field = (start: number, len: number): string => {
      const s = h.subarray(start, start + len);
      const end = s.indexOf(0);
      return s.subarray(0, end === -1 ? len : end).toString('utf8');
    };
    const name = field(0, 100);
    const prefix = field(345, 155);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    out.push({ path: prefix ? `${prefix}/${name}` : name, type: field(156, 1), size, linkname: field(157, 100) });
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}
