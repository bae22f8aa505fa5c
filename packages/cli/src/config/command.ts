/** `shoal config create|ls|inspect|rm`. */
import type { Command } from 'commander';
import { CONFIGS, registerObjects } from '../secret/objects.js';

export function registerConfig(program: Command): void {
  registerObjects(program, CONFIGS, 'Manage swarm configs');
}
