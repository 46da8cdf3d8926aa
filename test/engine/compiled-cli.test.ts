import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { buildKey, compiledCli, compiledCounterpart, compiledModule, sourceModules } from '../../engine/compiled-cli.mjs';

/** A source tree like the CLI's: a module that finds a file beside itself, and one importing it. */
function sources(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'animind-compiled-'));
  mkdirSync(path.join(root, 'engine'));
  mkdirSync(path.join(root, 'cli'));
  writeFileSync(
    path.join(root, 'engine/where.ts'),
    "export const data: string = new URL('./data.json', import.meta.url).href;\nexport const dir: string = import.meta.dirname;\nexport const instance = {};\n",
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

  const where = (await import(compiledModule(dir, 'engine/where.ts'))) as { data: string; dir: string; instance: object };
  assert.equal(where.data, pathToFileURL(path.join(root, 'engine/data.json')).href);
  assert.equal(where.dir, path.join(root, 'engine'));
  const main = (await import(compiledModule(dir, 'cli/main.ts'))) as { shared: object };
  assert.equal(main.shared, where.instance);
});

test('a worker entry given by its source path maps to its compiled module; a file outside the build does not', async () => {
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

test('no build where the cache cannot be written or the sources do not compile (the CLI then runs them through tsx)', async () => {
  const root = sources();
  const blocked = path.join(root, 'not-a-folder');
  writeFileSync(blocked, '');
  assert.equal(await compiledCli(root, blocked), undefined);

  writeFileSync(path.join(root, 'engine/broken.ts'), 'export const = ;\n');
  const cache = path.join(root, 'cache');
  assert.equal(await compiledCli(root, cache), undefined);
  assert.deepEqual(readdirSync(cache), [], 'no partial build is left behind');
});
