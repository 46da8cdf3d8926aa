/**
 * The CLI's TypeScript as plain ES modules, so `animind` starts without a TypeScript loader. Under
 * tsx every module went through the loader's hooks thread: `animind --help` took 0.65 s and
 * 109 MB, against 0.34 s and 78 MB compiled, and a 10M-row prep peaked ~20 MB lower.
 *
 * Every TypeScript module under the source folders is its own entry point of one esbuild build
 * with code splitting, so each keeps a file of its own (`engine/node.ts` → `engine/node.mjs`) while
 * all of them share one instance of every module; the plain ES modules among them
 * (`engine/cache-folder.mjs`) are bundled where they are imported. A user's node loaded by its
 * `.ts` path imports the engine from source (`animind`, the public entry engine/index.ts, or a
 * relative path); userModuleHooks redirects those imports to the compiled files, so
 * `instanceof DataError` and the batch symbols are the ones the CLI itself uses.
 *
 * The build is keyed by the sources' content and reused until one changes (~5 ms to check; a build
 * takes ~0.1 s). It lives in the cache folder (cache-folder.mjs), beside the worker scripts,
 * where packages resolve as they do from the sources. Where no cache folder can be written or the
 * build fails, there is no build, and bin/animind.mjs runs the sources through tsx as before.
 * Plain JavaScript, because it runs before anything could load TypeScript.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cacheFolder } from './cache-folder.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/**
 * Every folder holding a module the CLI loads: a module outside them would be bundled into the
 * build without being part of its key, so an edit to it would not reach the CLI until some other
 * source changed (config/ was missing once). compiled-cli.test.ts walks the CLI's imports and fails
 * on a module outside these folders.
 */
const SOURCE_FOLDERS = ['cli', 'config', 'engine', 'sinks', 'sources', 'transforms'];
/** The package's public entry, what `import … from 'animind'` gives a user's node module. */
const PUBLIC_ENTRY = 'engine/index.ts';
// Found as Node finds it, so a hoisted install (esbuild beside animind, not under it) works too.
const ESBUILD_PACKAGE = path.join(
  path.dirname(createRequire(import.meta.url).resolve('esbuild')),
  '..',
  'package.json',
);

/**
 * Every module under the source folders, relative to `root`, in a fixed order: the TypeScript
 * modules (declaration files are none) and the plain ES modules (`.mjs`), which the build bundles
 * where the TypeScript imports them, so the key must cover them too.
 */
export function sourceModules(root = ROOT) {
  return SOURCE_FOLDERS.flatMap((folder) =>
    existsSync(path.join(root, folder))
      ? readdirSync(path.join(root, folder), { recursive: true })
          .map((file) => path.join(folder, String(file)))
          .filter((file) => (file.endsWith('.ts') && !file.endsWith('.d.ts')) || file.endsWith('.mjs'))
      : [],
  ).sort();
}

/** The TypeScript modules, each an entry of the build with a compiled file of its own. */
const entryModules = (root) => sourceModules(root).filter((file) => file.endsWith('.ts'));

/**
 * Names a build by everything its output depends on: the sources, this file, esbuild's version,
 * and where the sources are, since a build names files beside them (worker scripts, pipelines) by
 * their paths. Two checkouts sharing a cache folder (a temporary folder, a linked node_modules)
 * would otherwise share one build, pointing into whichever checkout made it.
 */
export function buildKey(root = ROOT) {
  const hash = createHash('sha256');
  hash.update(path.resolve(root));
  hash.update(readFileSync(fileURLToPath(import.meta.url)));
  hash.update(readFileSync(ESBUILD_PACKAGE));
  for (const file of sourceModules(root)) hash.update(`\0${file}\0`).update(readFileSync(path.join(root, file)));
  return hash.digest('hex').slice(0, 16);
}

/** The compiled counterpart of a source module: `engine/node.ts` → `<dir>/engine/node.mjs`. */
const compiledFile = (dir, file) => path.join(dir, file.replace(/\.ts$/, '.mjs'));

/**
 * The folder holding the compiled CLI for the sources in `root` as they are now, built first if
 * `cache` does not have it yet; undefined when it cannot be built there.
 */
export async function compiledCli(root = ROOT, cache = cacheFolder()) {
  if (!cache) return undefined;
  const name = `cli-${buildKey(root)}`;
  const dir = path.join(cache, name);
  if (existsSync(dir)) return dir;
  // Built aside and renamed, so a run started meanwhile never loads half a build.
  const partial = `${dir}.${process.pid}.tmp`;
  try {
    mkdirSync(cache, { recursive: true });
    await build(root, partial);
    try {
      renameSync(partial, dir);
    } catch (error) {
      // Another run finished the same build first.
      if (!existsSync(dir)) throw error;
      rmSync(partial, { recursive: true, force: true });
    }
  } catch {
    try {
      rmSync(partial, { recursive: true, force: true });
    } catch {
      // The cache cannot be written at all, so nothing was left in it.
    }
    return undefined;
  }
  pruneStale(cache, name);
  return dir;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Each edit of a source makes a new build; those a day old go. A run loads all its modules, its
 * worker threads' included, as it starts (nothing is imported lazily from a build), so one still
 * running is not disturbed.
 */
function pruneStale(cache, keep) {
  for (const entry of readdirSync(cache)) {
    const dir = path.join(cache, entry);
    if (!entry.startsWith('cli-') || entry === keep) continue;
    try {
      if (Date.now() - statSync(dir).mtimeMs > DAY_MS) rmSync(dir, { recursive: true, force: true });
    } catch {
      // Pruned by another run meanwhile.
    }
  }
}

async function build(root, outdir) {
  const { build: esbuild } = await import('esbuild');
  await esbuild({
    entryPoints: entryModules(root).map((file) => path.join(root, file)),
    outbase: root,
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    logLevel: 'silent',
    plugins: [sourceLocation],
  });
}

/**
 * Modules find files beside their sources (worker scripts, pipelines, package.json, the cache
 * folder) through import.meta, which in a compiled chunk would name the chunk; each module's own
 * is written in.
 */
const sourceLocation = {
  name: 'source-location',
  setup(build) {
    build.onLoad({ filter: /\.(ts|mjs)$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8')
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href))
        .replaceAll('import.meta.dirname', JSON.stringify(path.dirname(args.path)))
        .replaceAll('import.meta.filename', JSON.stringify(args.path)),
      loader: args.path.endsWith('.ts') ? 'ts' : 'js',
    }));
  },
};

/**
 * Imports a user's node module: registers the TypeScript loader on first use (a pipeline of
 * built-ins never pays for it), then userModuleHooks. `dir` is the compiled CLI's folder, or
 * undefined when the CLI runs its sources through tsx, which is registered already.
 */
export function userModuleImporter(dir, root = ROOT) {
  let ready;
  return async (url) => {
    ready ??= (async () => {
      if (dir) {
        const { register: registerTsx } = await import('tsx/esm/api');
        registerTsx();
      }
      userModuleHooks(dir, root);
    })();
    await ready;
    return import(url);
  };
}

/**
 * Registers compiled-cli-hooks.mjs, after tsx so that it runs first and sees what tsx resolved a
 * specifier to: a user's module, wherever it lies, imports `animind` (the public entry,
 * engine/index.ts, found through package.json's "exports") and `zod` as the CLI does; and, with
 * `dir`, its imports of the CLI's sources get their compiled files.
 */
export function userModuleHooks(dir, root = ROOT) {
  const redirects = dir
    ? Object.fromEntries(
        entryModules(root).map((file) => [
          pathToFileURL(path.join(root, file)).href,
          pathToFileURL(compiledFile(dir, file)).href,
        ]),
      )
    : {};
  const entry = dir ? compiledModule(dir, PUBLIC_ENTRY) : pathToFileURL(path.join(root, PUBLIC_ENTRY)).href;
  const shared = { animind: pathToFileURL(path.join(root, 'package.json')).href, zod: entry };
  register('./compiled-cli-hooks.mjs', import.meta.url, { data: { redirects, shared } });
}

/** The compiled module of a source file, as a URL to import. */
export const compiledModule = (dir, file) => pathToFileURL(compiledFile(dir, file)).href;

/** The compiled module of a source file given by its path, as a URL; undefined for a file outside the build. */
export function compiledCounterpart(dir, root = ROOT) {
  return (source) => {
    const file = path.relative(root, source);
    return !file.startsWith('..') && file.endsWith('.ts') && existsSync(compiledFile(dir, file))
      ? compiledModule(dir, file)
      : undefined;
  };
}
