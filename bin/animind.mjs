#!/usr/bin/env node
import v8 from 'node:v8';
import { register } from 'tsx/esm/api';

// V8 lets the old generation grow to ~3.5x its live size between full collections when a program
// allocates fast, as prep does: most of its garbage is rows sampled, held, then evicted, so it
// dies old. Growing by 30% keeps peak memory near the live heap. Measured with bench:prep:
// 100M rows, 1,117 -> 824 MB at the same speed; 10M, ~605 -> ~510 MB.
v8.setFlagsFromString('--heap-growing-percent=30');
// Registers tsx so both the CLI and user nodes named by a `.ts` path load without a build step.
register();
await import('../cli/main.ts');
