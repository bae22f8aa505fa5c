#!/usr/bin/env node
import module from 'node:module';

// V8's code cache for our modules (in the OS temp dir; Node 22.1 and later): loading them is
// most of a command's start-up, which a loaded machine stretches to seconds. Then the program.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
const { main } = await import('./program.js');

process.exitCode = await main(process.argv.slice(2));
