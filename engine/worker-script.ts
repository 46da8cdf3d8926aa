import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { cacheFolder, writeAside } from './cache-folder.mjs';

const built = new Map<string, URL>();

/** Where a source module's compiled counterpart is, when the CLI runs compiled (bin/animind.mjs). */
let compiledCounterpart: ((source: string) => string | undefined) | undefined;

/**
 * The compiled CLI's build already holds every worker entry as a plain module: a worker then loads
 * that one, and no bundle is made (esbuild's first call in a run started its service and took
 * ~75 ms of the main thread before the scan workers could start).
 */
export function setCompiledModules(counterpart: (source: string) => string | undefined): void {
  compiledCounterpart = counterpart;
}

/**
 * A worker thread's TypeScript entry as one plain ES module, so the thread starts without the
 * TypeScript loader. Under tsx, each scan worker spent ~0.4 s of CPU and ~25 MB loading modules
 * through the loader, on a machine whose two cores the scan needs. Measured at 10M rows over
 * three runs each: 9.4 s and 584 MB, against 10.1 s and 634 MB.
 *
 * The module is bundled with esbuild (what tsx itself compiles with), its packages left as
 * imports. It is written once per content into the cache folder (cache-folder.mjs), where
 * packages resolve as they do from the sources.
 */
export function workerScript(entry: URL): URL {
  const key = entry.href;
  let script = built.get(key);
  if (!script) {
    const source = fileURLToPath(entry);
    const compiled = compiledCounterpart?.(source);
    if (compiled) {
      script = new URL(compiled);
      built.set(key, script);
      return script;
    }
    const { outputFiles } = buildSync({
      entryPoints: [source],
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      target: 'node20',
      write: false,
      logLevel: 'silent',
    });
    const code = outputFiles[0]!.contents;
    const name =
      `${path.basename(source, path.extname(source))}-` +
      `${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`;
    script = pathToFileURL(writeScript(name, code));
    built.set(key, script);
  }
  return script;
}

/** Writes a worker script into `folder`; returns its path. */
export function writeScript(name: string, code: Uint8Array, folder = cacheFolder()): string {
  if (!folder)
    throw new Error(
      `could not write the worker script ${name}: neither node_modules/.cache nor the temporary folder can be written`,
    );
  const file = path.join(folder, name);
  if (!existsSync(file)) writeAside(file, code);
  return file;
}
