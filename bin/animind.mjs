#!/usr/bin/env node
// Registers tsx so both the CLI and user nodes named by a `.ts` path load without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
