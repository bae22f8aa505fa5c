/**
 * JSON with bytes: objects carry certificates, keys and secret data as Uint8Array (Buffer). Plain
 * JSON would turn them into `{type:'Buffer',data:[...]}` or index maps; here they travel as
 * `{"$shoal:bytes": "<base64>"}` and come back as Buffers (which are Uint8Arrays).
 */
const BYTES_KEY = '$shoal:bytes';

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (value instanceof Uint8Array)
    return { [BYTES_KEY]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (
    typeof value === 'object' &&
    value !== null &&
    (value as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((value as { data?: unknown }).data) &&
    Object.keys(value).length === 2
  ) {
    // Buffer.prototype.toJSON ran before the replacer saw the value.
    return { [BYTES_KEY]: Buffer.from((value as { data: number[] }).data).toString('base64') };
  }
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const b = (value as Record<string, unknown>)[BYTES_KEY];
    if (typeof b === 'string' && Object.keys(value).length === 1) return Buffer.from(b, 'base64');
  }
  return value;
}

export function encodeJson(v: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(v, replacer), 'utf8');
}

export function decodeJson(data: Uint8Array): unknown {
  return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'), reviver);
}

/** One value as a JSON string with the same byte encoding as `encodeJson`. */
export function jsonString(v: unknown): string {
  return JSON.stringify(v, replacer);
}

/** Parses one JSON string written by `jsonString`. */
export function parseJsonString(text: string): unknown {
  return JSON.parse(text, reviver);
}
