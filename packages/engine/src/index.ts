/**
 * @module @shoal/engine
 * (being built; see docs/ and the open issues)
 */
export const PACKAGE = '@shoal/engine';
