/**
 * Message construction helpers and the special contexts carried by vote and transfer messages.
 */
import type { Entry, Message, MessageType, NodeId } from './types.js';
import { NONE } from './types.js';
import { EMPTY_BYTES } from './util.js';

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);

/** Context of a vote request sent because of a leader transfer: voters ignore their lease. */
export const TRANSFER_CTX: Uint8Array = new TextEncoder().encode('shoal-raft-transfer');

export function isTransferCtx(ctx: Uint8Array): boolean {
  if (ctx.byteLength !== TRANSFER_CTX.byteLength) return false;
  for (let k = 0; k < ctx.byteLength; k++) if (ctx[k] !== TRANSFER_CTX[k]) return false;
  return true;
}

export type MessageFields = Partial<Omit<Message, 'type' | 'to'>>;

/** A message with every unset field at its zero value. */
export function newMessage(type: MessageType, to: NodeId, f: MessageFields = {}): Message {
  return {
    type,
    from: f.from ?? NONE,
    to,
    term: f.term ?? 0,
    index: f.index ?? 0,
    logTerm: f.logTerm ?? 0,
    commit: f.commit ?? 0,
    entries: f.entries ?? NO_ENTRIES,
    reject: f.reject ?? false,
    rejectHint: f.rejectHint ?? 0,
    ...(f.snapshot === undefined ? {} : { snapshot: f.snapshot }),
    context: f.context ?? EMPTY_BYTES,
  };
}

/** A copy of `m` with some fields replaced. */
export function withFields(m: Message, f: MessageFields & { to?: NodeId }): Message {
  return { ...m, ...f };
}

/** Response type of a vote-like request. */
export function voteRespType(t: MessageType): MessageType {
  return t === 'preVote' ? 'preVoteResp' : 'voteResp';
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** transferLeader messages carry the transferee id in `context`. */
export function encodeNodeId(id: NodeId): Uint8Array {
  return enc.encode(id);
}

export function decodeNodeId(b: Uint8Array): NodeId {
  return dec.decode(b);
}
