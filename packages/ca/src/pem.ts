/**
 * PEM blocks with RFC 1421-style headers (`Name: value` lines, then a blank line, then base64),
 * which the node key file uses to carry the wrapped Raft DEK next to the key.
 */
import { InvalidPemError } from './errors.js';

export interface PemBlock {
  readonly type: string;
  readonly headers: ReadonlyMap<string, string>;
  readonly der: Buffer;
}

export function encodePem(type: string, der: Uint8Array, headers?: ReadonlyMap<string, string>): string {
  const lines = [`-----BEGIN ${type}-----`];
  if (headers && headers.size > 0) {
    for (const [k, v] of headers) lines.push(`${k}: ${v}`);
    lines.push('');
  }
  const b64 = Buffer.from(der).toString('base64');
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  lines.push(`-----END ${type}-----`, '');
  return lines.join('\n');
}

/** Every PEM block in `text`, in order. `where` names the source in errors. */
export function decodePemBlocks(text: string, where: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const [, type, body, endType] = m as unknown as [string, string, string, string];
    if (type !== endType) throw new InvalidPemError(where, `BEGIN ${type} ends with END ${endType}`);
    const headers = new Map<string, string>();
    const lines = body.split(/\r?\n/);
    let i = 0;
    if (lines.some((l) => l.includes(':'))) {
      for (; i < lines.length && lines[i] !== ''; i++) {
        const line = lines[i] as string;
        const colon = line.indexOf(':');
        if (colon <= 0) throw new InvalidPemError(where, `malformed header line in ${type} block`);
        headers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
    }
    const b64 = lines.slice(i).join('');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new InvalidPemError(where, `bad base64 in ${type} block`);
    out.push({ type, headers, der: Buffer.from(b64, 'base64') });
  }
  return out;
}

/** The single block of `type` in `text`, or throws. */
export function decodePem(text: string, type: string, where: string): PemBlock {
  const blocks = decodePemBlocks(text, where).filter((b) => b.type === type);
  if (blocks.length !== 1) {
    throw new InvalidPemError(where, `expected one ${type} PEM block, found ${blocks.length}`);
  }
  return blocks[0] as PemBlock;
}
