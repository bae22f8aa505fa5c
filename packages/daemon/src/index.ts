/**
 * @module @shoal/daemon
 * `shoald`: one daemon per host that wires the manager and worker roles. For now it only
 * reports its version.
 */
export { shoalVersion } from './version.js';
