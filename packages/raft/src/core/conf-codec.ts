/**
 * Binary codec of a ConfChange into the data of a 'confChange' entry.
 * Layout (version 1): u8 version, u8 transition (0 auto, 1 explicit), u16 change count, then per
 * change u8 type (0 addNode, 1 removeNode, 2 addLearner), u8 id length, id bytes (UTF-8); then
 * u32 context length and the context bytes. Big-endian.
 */
import { RaftDecodeError } from '../errors.js';
import type { ConfChange, ConfChangeSingle, ConfChangeType } from './types.js';

const VERSION = 1;
const TYPES: readonly ConfChangeType[] = ['addNode', 'removeNode', 'addLearner'];
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ids = cc.changes.map((c) => enc.encode(c.nodeId));
  let size = 4 + 4 + cc.context.byteLength;
  for (const id of ids) size += 2 + id.byteLength;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  out[1] = cc.transition === 'explicit' ? 1 : 0;
  view.setUint16(2, cc.changes.length);
  let at = 4;
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k]!;
    if (id.byteLength > 255) throw new RaftDecodeError('ConfChange', `node id longer than 255 bytes`);
    out[at++] = TYPES.indexOf(cc.changes[k]!.type);
    out[at++] = id.byteLength;
    out.set(id, at);
    at += id.byteLength;
  }
  view.setUint32(at, cc.context.byteLength);
  out.set(cc.context, at + 4);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const fail = (why: string): never => {
    throw new RaftDecodeError('ConfChange', why);
  };
  if (data.byteLength < 8) fail(`too short (${data.byteLength} bytes)`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data[0] !== VERSION) fail(`unknown version ${data[0]}`);
  const tr = data[1];
  if (tr !== 0 && tr !== 1) fail(`unknown transition ${tr}`);
  const n = view.getUint16(2);
  let at = 4;
  const changes: ConfChangeSingle[] = [];
  for (let k = 0; k < n; k++) {
    if (at + 2 > data.byteLength) fail(`truncated at change ${k}`);
    const type = TYPES[data[at]!];
    if (type === undefined) fail(`unknown change type ${data[at]} at change ${k}`);
    const len = data[at + 1]!;
    if (at + 2 + len > data.byteLength) fail(`truncated node id at change ${k}`);
    const nodeId = dec.decode(data.subarray(at + 2, at + 2 + len));
    changes.push({ type: type!, nodeId });
    at += 2 + len;
  }
  if (at + 4 > data.byteLength) fail('truncated context length');
  const clen = view.getUint32(at);
  if (at + 4 + clen !== data.byteLength) fail(`context length ${clen} does not match the remaining bytes`);
  return { changes, transition: tr === 1 ? 'explicit' : 'auto', context: data.slice(at + 4) };
}
