import assert from 'node:assert/strict';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import {
  buildKey,
  compiledCli,
  compiledCounterpart,
  compiledModule,
  sourceModules,
} from '../../engine/compiled-cli.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A worker entry in TypeScript, named by a URL beside the module that starts it: it runs from the build too. */
const WORKER_ENTRY = /new URL\(\s*(['"`])(\.{1,2}\/[^'"`]+\.ts)\1\s*,\s*import\.meta\.url\s*\)/g;

/**
 * Every module of the repository the CLI loads, relative to the root: what cli/main.ts imports,
 * as esbuild bundles it (packages left out), and the worker entries those modules start by URL,
 * with what they import in turn.
 */
async function cliModules(): Promise<string[]> {
  const found = new Set<string>();
  for (let entries = ['cli/main.ts']; entries.length;) {
    const { metafile } = await build({
      entryPoints: entries,
      absWorkingDir: ROOT,
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outdir: 'out',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const added = Object.keys(metafile.inputs).filter((file) => !found.has(file));
    for (const file of added) found.add(file);
    const workers = (file: string) =>
      [...readFileSync(path.join(ROOT, file), 'utf8').matchAll(WORKER_ENTRY)].map((match) =>
        path.join(path.dirname(file), match[2]!),
      );
    entries = added.flatMap(workers).filter((file) => !found.has(file));
  }
  return [...found].sort();
}

/** The CLI's modules, fetched once for the tests that need them. */
let cliModulesOnce: Promise<string[]> | undefined;
const loadedByCli = () => (cliModulesOnce ??= cliModules());

/** A source tree like the CLI's: a module that finds a file beside itself, and one importing it. */
function sources(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'animind-compiled-'));
  mkdirSync(path.join(root, 'engine'));
  mkdirSync(path.join(root, 'cli'));
  writeFileSync(
    path.join(root, 'engine/where.ts'),
    "export const data: string = new URL('./data.json', import.meta.url).href;\n" +
      'export const dir: string = import.meta.dirname;\nexport const instance = {};\n',
  );
  writeFileSync(path.join(root, 'engine/types.d.ts'), 'export type Nothing = never;\n');
  writeFileSync(path.join(root, 'cli/main.ts'), "export { instance as shared } from '../engine/where.ts';\n");
  return root;
}

test('every source module is an entry of its own, and declaration files are not modules', () => {
  assert.deepEqual(sourceModules(sources()), [path.join('cli', 'main.ts'), path.join('engine', 'where.ts')]);
});

test('the build key follows the sources: same content, same key; an edit, a new key', () => {
  const root = sources();
  const key = buildKey(root);
  assert.match(key, /^[0-9a-f]{16}$/);
  assert.equal(buildKey(root), key);
  writeFileSync(path.join(root, 'engine/where.ts'), 'export const instance = { edited: true };\n');
  assert.notEqual(buildKey(root), key);
});

const underConfig = (file: string) => file.startsWith(`config${path.sep}`);

test('the build key covers every module the CLI loads: imports (config/, plain .mjs) and worker entries', async () => {
  const modules = await loadedByCli();
  assert.ok(modules.includes('cli/main.ts') && modules.some(underConfig), `the walk found ${modules.join(', ')}`);
  const covered = new Set(sourceModules());
  assert.deepEqual(
    modules.filter((file) => !covered.has(file)),
    [],
    "modules the CLI loads outside the build's source folders, whose edits would not reach the CLI: " +
      'add their folder to SOURCE_FOLDERS in engine/compiled-cli.mjs',
  );
});

test('an edit to any module the CLI loads, config/ included, changes the build key (on a copy)', async () => {
  const modules = await loadedByCli();
  const root = mkdtempSync(path.join(tmpdir(), 'animind-compiled-copy-'));
  for (const folder of new Set(modules.map((file) => file.split(path.sep)[0]!)))
    cpSync(path.join(ROOT, folder), path.join(root, folder), {
      recursive: true,
      filter: (source) => statSync(source).isDirectory() || /\.m?ts$/.test(source),
    });
  const config = modules.filter(underConfig);
  assert.ok(config.length, 'the CLI loads modules under config/');
  for (const file of [...config, ...modules]) {
    const key = buildKey(root);
    appendFileSync(path.join(root, file), '\n// edited\n');
    assert.notEqual(buildKey(root), key, `an edit to ${file} left the build key as it was`);
  }
});

test('an edit under config/ or to a plain .mjs reaches the compiled CLI: the next run builds anew', async () => {
  const root = sources();
  mkdirSync(path.join(root, 'config'));
  writeFileSync(path.join(root, 'config/defaults.ts'), 'export const seed: number = 1;\n');
  writeFileSync(path.join(root, 'engine/plain.mjs'), "export const folder = 'cache';\n");
  writeFileSync(
    path.join(root, 'cli/main.ts'),
    [
      "export { seed } from '../config/defaults.ts';",
      "export { folder } from '../engine/plain.mjs';",
      "export { instance as shared } from '../engine/where.ts';",
    ].join('\n'),
  );
  const cache = path.join(root, 'cache');
  const run = async () => {
    const dir = (await compiledCli(root, cache))!;
    return (await import(compiledModule(dir, 'cli/main.ts'))) as { seed: number; folder: string };
  };
  assert.deepEqual({ ...(await run()) }, { seed: 1, folder: 'cache', shared: {} });
  writeFileSync(path.join(root, 'config/defaults.ts'), 'export const seed: number = 2;\n');
  assert.equal((await run()).seed, 2);
  writeFileSync(path.join(root, 'engine/plain.mjs'), "export const folder = 'elsewhere';\n");
  assert.equal((await run()).folder, 'elsewhere');
});

test('the same sources in another folder build apart: a build names the files beside its sources by path', () => {
  const root = sources();
  const copy = sources();
  assert.notEqual(buildKey(copy), buildKey(root));
});

test('the compiled modules find files beside their sources and share one instance of each module', async () => {
  const root = sources();
  const cache = path.join(root, 'cache');
  const dir = (await compiledCli(root, cache))!;
  assert.equal(path.dirname(dir), cache);
  assert.equal(await compiledCli(root, cache), dir, 'built once, then reused');

  const where = (await import(compiledModule(dir, 'engine/where.ts'))) as {
    data: string;
    dir: string;
    instance: object;
  };
  assert.equal(where.data, pathToFileURL(path.join(root, 'engine/data.json')).href);
  assert.equal(where.dir, path.join(root, 'engine'));
  const main = (await import(compiledModule(dir, 'cli/main.ts'))) as { shared: object };
  assert.equal(main.shared, where.instance);
});

test('a worker entry given by its source path maps to its compiled module; one outside the build not', async () => {
  const root = sources();
  const dir = (await compiledCli(root, path.join(root, 'cache')))!;
  const counterpart = compiledCounterpart(dir, root);
  assert.equal(counterpart(path.join(root, 'engine/where.ts')), compiledModule(dir, 'engine/where.ts'));
  assert.equal(counterpart(path.join(root, 'engine/missing.ts')), undefined);
  assert.equal(counterpart(path.join(tmpdir(), 'user-node.ts')), undefined);
});

test('a new build prunes those a day old and leaves recent ones', async () => {
  const root = sources();
  const cache = path.join(root, 'cache');
  const old = path.join(cache, 'cli-0000000000000000');
  const recent = path.join(cache, 'cli-1111111111111111');
  for (const dir of [old, recent]) mkdirSync(dir, { recursive: true });
  const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
  utimesSync(old, twoDaysAgo, twoDaysAgo);
  const dir = (await compiledCli(root, cache))!;
  assert.equal(existsSync(old), false);
  assert.deepEqual(readdirSync(cache).sort(), [path.basename(recent), path.basename(dir)].sort());
});

test('no build where the cache cannot be written or the sources do not compile (then tsx runs them)', async () => {
  const root = sources();
  const blocked = path.join(root, 'not-a-folder');
  writeFileSync(blocked, '');
  assert.equal(await compiledCli(root, blocked), undefined);

  writeFileSync(path.join(root, 'engine/broken.ts'), 'export const = ;\n');
  const cache = path.join(root, 'cache');
  assert.equal(await compiledCli(root, cache), undefined);
  assert.deepEqual(readdirSync(cache), [], 'no partial build is left behind');
});
