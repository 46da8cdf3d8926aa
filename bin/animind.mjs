#!/usr/bin/env node
import v8 from 'node:v8';
import { compiledCli, compiledCounterpart, compiledModule, userModuleImporter } from '../engine/compiled-cli.mjs';

// V8 lets the old generation grow to ~3.5x its live size between full collections when a program
// allocates fast, as prep does: much of its garbage is rows sampled, held, then evicted, so it
// dies old. Growing by 30% keeps peak memory near the live heap. Against the default (then 2048
// rows a batch): 100M rows ~1,010 -> ~720 MB at 60%, at the same speed. Against 60%, now that the
// pools hold less: 100M 355-357 -> 319-323 MB, 10M 289-317 -> 273-290 MB, for ~0.7 CPU-seconds
// more collecting at 10M (+0.3-0.5 s of wall time on two cores) and ~1-2 s at 100M.
v8.setFlagsFromString('--heap-growing-percent=30');
// V8 allocates objects straight into the old generation once most of those it sampled from one
// allocation site outlived a young collection (at 10M rows, five sites did). Made by the million in
// a long scan, such objects then die old, and the old generation filled with garbage: at 100M rows
// 37 full collections, 14 without pretenuring, and 34.3/33.4 -> 33.5/29.8 s in two pairs with peak
// RSS 331-338 -> 310 MB; at 10M 11 -> 7-8, a median 7.6 -> 7.1 s over four pairs. At 1M, where
// writing dominates, seven pairs gave the same median (4.6 s).
v8.setFlagsFromString('--no-allocation-site-pretenuring');

// ANIMIND_FROM_SOURCE=1 runs the sources through tsx, as where no build can be made: to debug the
// CLI against its sources, and for the tests of that path.
const cli = process.env.ANIMIND_FROM_SOURCE ? undefined : await compiledCli();
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
  // through tsx, which also loads user nodes; those import 'animind' and 'zod' as the CLI does.
  const { register } = await import('tsx/esm/api');
  register();
  const { setUserModuleImporter } = await import('../engine/user-modules.ts');
  setUserModuleImporter(userModuleImporter(undefined));
  await import('../cli/main.ts');
}
