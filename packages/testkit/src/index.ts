/**
 * @module @shoal/testkit
 * (being built; see docs/ and the open issues)
 */
export const PACKAGE = '@shoal/testkit';
