#!/usr/bin/env node
import v8 from 'node:v8';
import { compiledCli, compiledCounterpart, compiledModule, userModuleImporter } from '../engine/compiled-cli.mjs';

// V8 lets the old generation grow to ~3.5x its live size between full collections when a program
// allocates fast, as prep does: much of its garbage is rows sampled, held, then evicted, so it
// dies old. Growing by 60% keeps peak memory nearer the live heap. Measured at bench:prep's
// settings against the default (then 2048 rows a batch): 100M rows, ~1,010 -> ~720 MB at the same
// speed; 10M, ~605 -> ~555 MB for ~0.3 s. 30% and 100% did no better on either count.
v8.setFlagsFromString('--heap-growing-percent=60');

const cli = await compiledCli();
if (cli) {
  const { setUserModuleImporter } = await import(compiledModule(cli, 'engine/user-modules.ts'));
  // User nodes named by a `.ts` path load without a build step, against this same compiled engine.
  setUserModuleImporter(userModuleImporter(cli));
  // Worker threads load their entries from the same build.
  const { setCompiledModules } = await import(compiledModule(cli, 'engine/worker-script.ts'));
  setCompiledModules(compiledCounterpart(cli));
  await import(compiledModule(cli, 'cli/main.ts'));
} else {
  // No build (no cache folder can be written, or esbuild cannot compile the sources): they run
  // through tsx, which also loads user nodes and reports a syntax error with its file and line.
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
