/**
 * A user's node module in a project of their own, anywhere on disk: it imports the node API and zod
 * from the installed animind (`import { defineTransform, port, z } from 'animind'`), and the CLI
 * reports what goes wrong in it on one line. Each case runs the real CLI twice: compiled (as it
 * normally runs) and from its sources through tsx (as where no build can be made).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, runCli } from '../helpers/cli.ts';

/** The two ways the CLI runs: compiled from a cache, and its sources through tsx. */
const MODES = [
  { mode: 'compiled', env: {} },
  { mode: 'through tsx', env: { ANIMIND_FROM_SOURCE: '1' } },
];

/** A node as a user writes it in their own project: everything from animind, and zod as usual. */
const KEEP_TASK = `import { DataError, defineTransform, port, z } from 'animind';
import { z as zod } from 'zod';

interface Row {
  task?: string;
  n: number;
}

export default defineTransform({
  type: 'keep-task',
  kind: 'transform',
  description: 'Keeps rows whose task is in the list; a row without a task is bad data.',
  options: z.strictObject({ tasks: zod.array(zod.enum(['A', 'B', 'C'])).min(1) }),
  inputs: { in: port<Row>() },
  create(ctx, inputs) {
    return inputs.ports.in.map((batch) => {
      const bad = batch.find((row) => !row.task);
      if (bad) throw new DataError(\`row \${bad.n} has no task\`, { key: 'task' });
      return batch.filter((row) => ctx.options.tasks.includes(row.task as 'A' | 'B' | 'C'));
    });
  },
});
`;

/**
 * A fresh folder outside the checkout holding `files` (name → text), and a pipeline `p.yaml` that
 * reads JSON lines from stdin through the node module `node` (named by its absolute path, with
 * the YAML lines of `options`) to stdout.
 */
function project(files: Record<string, string>, node = 'keep-task.ts', options = '    tasks: [B]\n') {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-user-project-'));
  assert.ok(path.relative(repoRoot, dir).startsWith('..'), `${dir} is outside the checkout`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  const pipeline = path.join(dir, 'p.yaml');
  writeFileSync(
    pipeline,
    'name: p\nnodes:\n  rows:\n    use: jsonl-source\n    path: "-"\n' +
      `  keep:\n    use: ${path.join(dir, node)}\n    from: rows\n${options}` +
      '  write:\n    use: jsonl-sink\n    from: keep\n    path: "-"\n',
  );
  return { dir, pipeline, node: path.join(dir, node) };
}

const ROWS = ['{"task":"A","n":1}', '{"task":"B","n":2}', '{"task":"C","n":3}', '{"task":"B","n":4}'].join('\n');
const numbers = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { n: number }).n);

for (const { mode, env } of MODES) {
  for (const [folder, files] of [
    ['a folder with no package.json', {}],
    ['a folder whose package.json says "type": "module"', { 'package.json': '{ "type": "module" }\n' }],
  ] as const) {
    test(`a node importing 'animind' and 'zod' runs from ${folder}, outside the checkout (${mode})`, async () => {
      const { pipeline } = project({ ...files, 'keep-task.ts': KEEP_TASK });
      const { code, stdout, stderr } = await runCli(['pipeline', 'run', pipeline, '--quiet'], { input: ROWS, env });
      assert.equal(stderr, '');
      assert.equal(code, 0);
      assert.deepEqual(numbers(stdout), [2, 4]);
    });
  }

  test(`a node's DataError from 'animind' is the CLI's own: its key and exit code are kept (${mode})`, async () => {
    const { pipeline } = project({ 'keep-task.ts': KEEP_TASK });
    const { code, stderr } = await runCli(['pipeline', 'run', pipeline, '--quiet'], { input: '{"n":7}\n', env });
    // A DataError of another copy of the engine would be an unknown error: no key.
    assert.equal(stderr, "error: node 'keep': key 'task': row 7 has no task\n");
    assert.equal(code, 1);
  });
}

test("a project with a zod of its own: the node's 'zod' is still the CLI's, the schema the CLI checks", async () => {
  const { pipeline } = project({
    'keep-task.ts': KEEP_TASK,
    'package.json': '{ "type": "module" }\n',
    'node_modules/zod/package.json': '{ "name": "zod", "type": "module", "exports": "./index.js" }\n',
    'node_modules/zod/index.js': "export const z = 'not the zod animind uses';\n",
  });
  const { code, stdout, stderr } = await runCli(['pipeline', 'run', pipeline, '--quiet'], { input: ROWS });
  assert.equal(stderr, '');
  assert.equal(code, 0);
  assert.deepEqual(numbers(stdout), [2, 4]);
});

/** A transform whose create() starts a lookup and lets its promise go: it rejects with nothing to see it. */
const LETS_A_PROMISE_GO = `import { defineTransform, port, z } from 'animind';

async function lookup(): Promise<void> {
  throw new Error('lookup table unreachable');
}

export default defineTransform({
  type: 'lookup',
  kind: 'transform',
  description: 'Starts a lookup it never awaits.',
  options: z.strictObject({}),
  inputs: { in: port() },
  create(_ctx, inputs) {
    void lookup();
    return inputs.ports.in;
  },
});
`;

for (const { mode, env } of MODES) {
  test(`a node module that does not compile: one line with its file, line, column and why (${mode})`, async () => {
    const broken = KEEP_TASK.replace('const bad = batch', 'const bad = = batch');
    const { pipeline, node } = project({ 'keep-task.ts': broken });
    const line = broken.split('\n').findIndex((text) => text.includes('= = batch')) + 1;
    const { code, stderr } = await runCli(['pipeline', 'run', pipeline, '--quiet'], { env });
    assert.equal(
      stderr,
      `error: ${pipeline}:6: node 'keep': cannot load node module ${node}:${line}:19: Unexpected "="\n`,
    );
    assert.equal(code, 2);
  });

  test(`a promise a node lets reject unobserved: one line naming the node and the line, exit 1 (${mode})`, async () => {
    const { pipeline, node } = project({ 'lookup.ts': LETS_A_PROMISE_GO }, 'lookup.ts', '');
    const { code, stderr } = await runCli(['pipeline', 'run', pipeline, '--quiet'], { input: ROWS, env });
    assert.equal(stderr, `error: ${node}:4: node 'keep': unhandled promise rejection: lookup table unreachable\n`);
    assert.equal(code, 1);
  });
}

test('a promise let go in a module two nodes use: one line naming the module, its line and both nodes', async () => {
  const { dir, node } = project({ 'lookup.ts': LETS_A_PROMISE_GO }, 'lookup.ts', '');
  const pipeline = path.join(dir, 'two.yaml');
  writeFileSync(
    pipeline,
    'name: two\nnodes:\n  rows:\n    use: jsonl-source\n    path: "-"\n' +
      `  first:\n    use: ${node}\n    from: rows\n  second:\n    use: ${node}\n    from: first\n` +
      '  write:\n    use: jsonl-sink\n    from: second\n    path: "-"\n',
  );
  const { code, stderr } = await runCli(['pipeline', 'run', pipeline, '--quiet'], { input: ROWS });
  assert.equal(
    stderr,
    `error: ${node}:4: unhandled promise rejection in one of its nodes 'first', 'second': lookup table unreachable\n`,
  );
  assert.equal(code, 1);
});
