import type { Lookup } from './template.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses an env file as Docker's kvfile does: one `KEY=VALUE` per line, leading blanks
 * trimmed, `#` lines and blank lines skipped, the value kept verbatim (quotes and trailing
 * spaces included), a bare `KEY` taken from the environment or dropped. Returns `KEY=VALUE`
 * strings; throws with Docker's message (without the file name) on a bad line.
 */
export function parseEnvFile(content: Buffer, lookup: Lookup): string[] {
  const out: string[] = [];
  let start = 0;
  let lineNo = 0;
  while (start < content.length) {
    let end = content.indexOf(0x0a, start);
    if (end < 0) end = content.length;
    let bytes = content.subarray(start, end);
    start = end + 1;
    lineNo++;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    let line: string;
    try {
      line = decoder.decode(bytes);
    } catch (e) {
      if (e instanceof TypeError)
        throw new Error(`invalid utf8 bytes at line ${lineNo}: [${[...bytes].join(' ')}]`, { cause: e });
      throw e;
    }
    if (lineNo === 1 && line.startsWith('\uFEFF')) line = line.slice(1);
    line = line.replace(/^\s+/u, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === '') throw new Error(`no variable name on line '${line}'`);
    if (/[ \t]/.test(key)) throw new Error(`variable '${key}' contains whitespaces`);
    if (eq >= 0) {
      out.push(line);
      continue;
    }
    const v = lookup(line);
    if (v !== undefined) out.push(`${key}=${v}`);
  }
  return out;
}
