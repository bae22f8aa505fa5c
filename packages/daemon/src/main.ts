#!/usr/bin/env node
import { shoalVersion } from './version.js';

const args = process.argv.slice(2);
if (args.includes('--version') || args.includes('-v') || args[0] === 'version') {
  process.stdout.write(`shoald ${shoalVersion()}\n`);
} else {
  process.stderr.write('shoald: only --version is implemented so far\n');
  process.exitCode = 2;
}
