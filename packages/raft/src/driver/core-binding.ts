/**
 * Binds the driver to the core's RawNode and ConfChange codec (one place to wire them).
 */
import type { ConfChange, RawNodeApi, RaftConfig } from '../core/types.js';
import { RawNode } from '../core/raw-node.js';
import { decodeConfChange } from '../core/conf-codec.js';

export const coreBinding: {
  createRawNode: (config: RaftConfig) => RawNodeApi;
  decodeConfChange: (data: Uint8Array) => ConfChange;
} = {
  createRawNode: (config) => new RawNode(config),
  decodeConfChange,
};
