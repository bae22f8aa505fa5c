/** `shoal secret create|ls|inspect|rm`. */
import type { Command } from 'commander';
import { SECRETS, registerObjects } from './objects.js';

export function registerSecret(program: Command): void {
  registerObjects(program, SECRETS, 'Manage swarm secrets');
}
