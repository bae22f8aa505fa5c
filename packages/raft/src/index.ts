/**
 * @module @shoal/raft
 * (being built; see docs/ and the open issues)
 */
export const PACKAGE = '@shoal/raft';
