/** Fixed-width base-36 (0-9a-z) encoding of byte strings, as join tokens use. */

/** `bytes` read as one big-endian number, in base 36, left-padded with '0' to `width`. */
export function toBase36(bytes: Uint8Array, width: number): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  const s = n.toString(36);
  if (s.length > width) throw new RangeError(`base-36 form of ${bytes.length} bytes is longer than ${width}`);
  return s.padStart(width, '0');
}

/** True if `s` is only base-36 digits (lower case). */
export function isBase36(s: string): boolean {
  return /^[0-9a-z]*$/.test(s);
}
