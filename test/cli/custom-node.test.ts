import assert from 'node:assert/strict';
import { test } from 'node:test';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTransform } from '../../engine/run-node.ts';
import keepTask from '../../pipelines/examples/keep-task.ts';
import { repoRoot, runCli } from '../helpers/cli.ts';

test("the README's custom transform loads from its .ts path without a build step", async () => {
  const input = ['{"task":"A","n":1}', '{"task":"B","n":2}', '{"task":"C","n":3}', '{"task":"B","n":4}'].join('\n');
  const { code, stdout, stderr } = await runCli(['pipeline', 'run', 'pipelines/examples/task-b-only.yaml', '--quiet'], {
    input,
  });
  assert.equal(code, 0, stderr);
  assert.deepEqual(
    stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).n),
    [2, 4],
  );
});

test('a custom node with a bad option is caught by validation like a built-in', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'animind-custom-')), 'p.yaml');
  const node = path.join(repoRoot, 'pipelines/examples/keep-task.ts');
  writeFileSync(
    file,
    `name: p\nnodes:\n  rows:\n    use: jsonl-source\n    path: "-"\n` +
      `  keep:\n    use: ${node}\n    from: rows\n    tasks: [D]\n` +
      `  write:\n    use: jsonl-sink\n    from: keep\n    path: "-"\n`,
  );
  const { code, stderr } = await runCli(['pipeline', 'validate', file]);
  assert.equal(code, 2);
  assert.match(stderr, /p\.yaml:9: node 'keep': option 'tasks\.0': Invalid option: expected one of "A"\|"B"\|"C"/);
});

test("a user node's error keeps its type and location: the user node and the CLI share one engine", async () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'animind-custom-')), 'rows.jsonl');
  const { code, stderr } = await runCli([
    'pipeline',
    'run',
    'test/engine/pipelines/fail.yaml',
    '--quiet',
    '--set',
    `out=${out}`,
  ]);
  // A DataError from another copy of the engine would be wrapped as an unknown error: no key, and
  // a ConfigError would lose its exit code 2.
  assert.equal(stderr, "error: node 'check': key 'at': row 5000 is bad\n");
  assert.equal(code, 1);
  assert.equal(existsSync(out), false);
});

test("the README's node example is pipelines/examples/keep-task.ts, word for word", () => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.equal(example, readFileSync(path.join(repoRoot, 'pipelines/examples/keep-task.ts'), 'utf8'));
});

test('the example node reports the counter it declares, read through its stats schema', async () => {
  const rows = [{ task: 'A' }, { task: 'B' }, { task: 'B' }];
  const { rows: kept, stats } = await runTransform(
    keepTask,
    { tasks: ['B'] },
    { in: [rows.slice(0, 1), rows.slice(1)] },
  );
  assert.deepEqual(kept, [{ task: 'B' }, { task: 'B' }]);
  assert.deepEqual(keepTask.stats!.parse(stats), { kept: 2 });
});
