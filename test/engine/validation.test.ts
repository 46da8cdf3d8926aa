import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { DataError } from '../../engine/errors.ts';
import { createReporter } from '../../engine/progress.ts';
import { runPlan } from '../../engine/runtime.ts';
import { repoRoot, runCli } from '../helpers/cli.ts';
import { loadTestPlan } from '../helpers/plan.ts';

const broken = 'test/engine/pipelines/broken.yaml';

function pipelineFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'animind-val-')), 'p.yaml');
  writeFileSync(file, text);
  return file;
}

test('a broken pipeline is rejected before any data is read, with every problem and its line', async () => {
  const { code, stdout, stderr } = await runCli(['pipeline', 'validate', broken]);
  assert.equal(code, 2);
  assert.equal(stdout, '');
  const expected = [
    [6, /unknown node type 'semantic-ids-sourse' \(did you mean 'semantic-ids-source'\?\)/],
    [11, /option 'database': file .*nowhere\.sqlite does not exist/],
    [14, /unknown option 'colour' for sqlite-source/],
    [15, /node 'joined': missing input for port 'lookup'/],
    [19, /cycle between nodes: loop_a -> loop_b -> loop_a/],
    [27, /input 'ghost' is not a node in this pipeline/],
    [29, /node 'idle': missing 'from'/],
  ] as const;
  const lines = stderr.trim().split('\n');
  for (const [line, pattern] of expected)
    assert.ok(
      lines.some((l) => l.startsWith(`error: ${broken}:${line}: `) && pattern.test(l)),
      `expected a problem at line ${line} matching ${pattern}\n${stderr}`,
    );
  assert.match(lines.at(-1)!, /problems found; nothing was run/);
});

test('run refuses the same broken pipeline with exit 2 and writes nothing', async () => {
  const { code, stderr } = await runCli(['pipeline', 'run', broken]);
  assert.equal(code, 2);
  assert.doesNotMatch(stderr, /at .*\.ts:\d+/, 'no stack trace');
});

test('bad option values, unknown parameters and unused outputs are reported', async () => {
  const file = pipelineFile(`name: t
seed: 1
params:
  out: out.jsonl
nodes:
  rows:
    use: jsonl-source
    path: \${nowhere}
    read_chunk_bytes: -3
  spare:
    use: jsonl-source
    path: "-"
  write:
    use: jsonl-sink
    from: rows
    path: \${out}
`);
  const { code, stderr } = await runCli(['pipeline', 'validate', file]);
  assert.equal(code, 2);
  assert.match(stderr, /p\.yaml:8: unknown parameter \$\{nowhere\}/);
  assert.match(stderr, /p\.yaml:9: node 'rows': option 'read_chunk_bytes': Too small/);
  assert.match(stderr, /p\.yaml:10: node 'spare': its output is not used by any node/);
});

test('invalid YAML and --set for an undeclared parameter are config errors', async () => {
  const bad = await runCli(['pipeline', 'validate', pipelineFile('name: [unclosed\n')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /p\.yaml:\d+: invalid YAML/);
  const unknown = await runCli(['pipeline', 'validate', 'pipelines/catalog.yaml', '--set', 'colour=blue']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--set colour: no such parameter/);
});

test('a valid pipeline validates, draws as dot and mermaid', async () => {
  const ok = await runCli(['pipeline', 'validate', 'test/engine/pipelines/keyed.yaml']);
  assert.equal(ok.code, 0, ok.stderr);
  const dot = await runCli(['pipeline', 'graph', 'test/engine/pipelines/keyed.yaml', '--format', 'dot']);
  assert.match(dot.stdout, /"numbers" -> "draw" \[label="in"\]/);
  const mermaid = await runCli(['pipeline', 'graph', 'test/engine/pipelines/keyed.yaml', '--format', 'mermaid']);
  assert.match(mermaid.stdout, /^flowchart LR/);
  assert.match(mermaid.stdout, /draw -->\|in\| write/);
});

test('animind nodes lists every node type with options and defaults', async () => {
  const { code, stdout } = await runCli(['nodes']);
  assert.equal(code, 0);
  assert.match(stdout, /^sqlite-source \(source\)/m);
  assert.match(stdout, /row_group_size: integer = 16384/);
  assert.match(stdout, /workers: "auto"\|integer = "auto" {2}worker threads scanning user-id ranges/);
  assert.match(stdout, /join \(transform\)\s+inputs: main, lookup \(side\)/);
});

test('prep with --set out_dir= is a usage error that writes nothing, not a run into the root folder', async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'animind-val-'));
  const names = ['llm_prep_train.jsonl', 'llm_prep_summary.json', 'llm_prep_manifest.json'];
  // `${out_dir}/llm_prep_train.jsonl` with an empty out_dir is a file in the root folder.
  const inRoot = names.map((name) => path.join(path.parse(cwd).root, name)).filter((file) => !existsSync(file));
  try {
    const { code, stderr } = await runCli(
      ['pipeline', 'run', path.join(repoRoot, 'pipelines/prep.yaml'), '--quiet', '--set', 'out_dir='],
      { cwd },
    );
    assert.equal(code, 2, stderr);
    assert.deepEqual(stderr.trim().split('\n'), [
      `error: ${path.join(repoRoot, 'pipelines/prep.yaml')}: --set out_dir: expected a non-empty path, got ""`,
    ]);
    assert.deepEqual(readdirSync(cwd), []);
    assert.deepEqual(inRoot.filter(existsSync), []);
  } finally {
    for (const file of inRoot) rmSync(file, { force: true });
  }
});

test('a path option that is empty or only spaces after interpolation is an error naming the option', async () => {
  const file = pipelineFile(`name: t
params:
  folder: { type: string, default: "  " }
nodes:
  rows:
    use: jsonl-source
    path: \${folder}
  write:
    use: jsonl-sink
    from: rows
    path: ""
`);
  const { code, stderr } = await runCli(['pipeline', 'validate', file]);
  assert.equal(code, 2);
  assert.deepEqual(stderr.trim().split('\n'), [
    `error: ${file}:7: node 'rows': option 'path': expected a non-empty path, got "  "`,
    `error: ${file}:11: node 'write': option 'path': expected a non-empty path, got ""`,
    'error: 2 problems found; nothing was run',
  ]);
});

test('a folder where an input file is expected is named as such, for a JSON-lines file and a database', async () => {
  const folder = mkdtempSync(path.join(tmpdir(), 'animind-val-'));
  const jsonl = await runCli(['pipeline', 'validate', 'pipelines/catalog.yaml', '--set', `semantic_ids=${folder}`]);
  assert.equal(jsonl.code, 2);
  assert.deepEqual(jsonl.stderr.trim().split('\n'), [
    `error: pipelines/catalog.yaml:17: node 'semantic_ids': option 'path': ${folder} is a folder, expected a file`,
  ]);
  const sqlite = await runCli(['pipeline', 'validate', 'pipelines/catalog.yaml', '--set', `database=${folder}`]);
  assert.equal(sqlite.code, 2);
  assert.deepEqual(sqlite.stderr.trim().split('\n'), [
    `error: pipelines/catalog.yaml:21: node 'anime': option 'database': ${folder} is a folder, expected a file`,
  ]);
});

test('a database locked by another process is a transient data error (exit 1), not a usage error', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-val-'));
  const database = path.join(dir, 'anime.sqlite');
  copyFileSync(path.join(repoRoot, 'fixtures/anime.sqlite'), database);
  const out = path.join(dir, 'catalog.jsonl');
  const holder = new Database(database);
  holder.pragma('journal_mode = DELETE');
  // Another process writing: readers wait for its lock (better-sqlite3 waits 5 s), then give up.
  holder.exec('BEGIN EXCLUSIVE');
  try {
    const args = ['pipeline', 'run', 'pipelines/catalog.yaml', '--quiet', '--set', `database=${database}`];
    const { code, stderr } = await runCli([...args, '--set', `out=${out}`]);
    assert.equal(code, 1, stderr);
    assert.deepEqual(stderr.trim().split('\n'), [
      `error: pipelines/catalog.yaml:21: node 'anime': option 'database': ` +
        `database ${database} is locked by another process (SQLITE_BUSY); try again once it is released`,
    ]);
    assert.equal(existsSync(out), false);
  } finally {
    holder.exec('ROLLBACK');
    holder.close();
  }
});

test('a database locked after validation stops the run with the same message, exit 1', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-val-'));
  const database = path.join(dir, 'anime.sqlite');
  copyFileSync(path.join(repoRoot, 'fixtures/anime.sqlite'), database);
  const out = path.join(dir, 'catalog.jsonl');
  const plan = await loadTestPlan(path.join(repoRoot, 'pipelines/catalog.yaml'), { database, out });
  const holder = new Database(database);
  holder.pragma('journal_mode = DELETE');
  holder.exec('BEGIN EXCLUSIVE');
  try {
    await assert.rejects(runPlan(plan, { reporter: createReporter({ mode: 'quiet', format: 'text' }) }), (error) => {
      assert.ok(error instanceof DataError);
      assert.equal(
        error.oneLine(),
        `node 'anime': key 'database': database ${database} is locked by another process (SQLITE_BUSY); ` +
          'try again once it is released',
      );
      return true;
    });
    assert.equal(existsSync(out), false);
  } finally {
    holder.exec('ROLLBACK');
    holder.close();
  }
});
