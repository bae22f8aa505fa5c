import type { CommandModule } from '../command.js';
import { registerVersion } from './version.js';
import { registerLab } from './lab.js';
import { registerContainer } from './container.js';
import { registerImage } from './image.js';
import { registerVolume } from './volume.js';
import { registerSwarm } from './swarm.js';
import { registerNode } from './node.js';
import { registerService } from '../service/command.js';
import { registerSecret } from '../secret/command.js';
import { registerConfig } from '../config/command.js';
import { registerNetwork } from '../network/command.js';
import { registerStack } from '../stack/command.js';

/** Every top-level verb, in help order. Add one line per new command file. */
export const commands: CommandModule[] = [
  registerVersion,
  registerLab,
  registerContainer,
  registerImage,
  registerVolume,
  registerSwarm,
  registerNode,
  registerService,
  registerSecret,
  registerConfig,
  registerNetwork,
  registerStack,
];
