import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

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
