import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { animindBin, repoRoot, runCli } from '../helpers/cli.ts';

test('`animind pipeline run … | head -3` ends quietly with exit 0', () => {
  const script = `node ${animindBin} pipeline run test/engine/pipelines/numbers.yaml --set count=2000000 | head -3; echo "status=\${PIPESTATUS[0]}" >&2`;
  const result = spawnSync('bash', ['-c', script], { cwd: repoRoot, encoding: 'utf8' });
  assert.deepEqual(result.stdout.trim().split('\n'), ['{"n":0,"key":"k0"}', '{"n":1,"key":"k1"}', '{"n":2,"key":"k2"}']);
  assert.match(result.stderr, /status=0/);
  assert.doesNotMatch(result.stderr, /EPIPE|Error|error:/);
});

test('stdout carries only data; logs go to stderr', async () => {
  const { code, stdout, stderr } = await runCli(['pipeline', 'run', 'test/engine/pipelines/numbers.yaml', '--set', 'count=10']);
  assert.equal(code, 0);
  assert.equal(stdout.trim().split('\n').length, 10);
  for (const line of stdout.trim().split('\n')) JSON.parse(line);
  assert.match(stderr, /1\/2 Count/);
  assert.match(stderr, /numbers: done in/);
});

test('a JSON-lines source reading - takes stdin (jq … | animind pipeline run …)', async () => {
  const input = ['{"key":"a","n":1}', '', '{"key":"b","n":2}'].join('\n') + '\n';
  const { code, stdout } = await runCli(['pipeline', 'run', 'test/engine/pipelines/relay.yaml', '--quiet'], { input });
  assert.equal(code, 0);
  const rows = stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((r) => r.key), ['a', 'b']);
  assert.ok(rows.every((r) => Number.isInteger(r.draw)));
});

test('invalid JSON on stdin is one line naming <stdin> and the line', async () => {
  const { code, stdout, stderr } = await runCli(['pipeline', 'run', 'test/engine/pipelines/relay.yaml', '--quiet'], { input: '{"key":"a"}\n{oops\n' });
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.match(stderr, /^error: <stdin>:2: node 'rows': invalid JSON .*expected one JSON object per line\n$/);
});

test('--log-format json writes one JSON object per log line', async () => {
  const { code, stderr } = await runCli(['pipeline', 'run', 'test/engine/pipelines/numbers.yaml', '--set', 'count=10', '--set', 'out=/dev/null', '--log-format', 'json']);
  assert.equal(code, 0);
  const lines = stderr.trim().split('\n').slice(0, -1);
  assert.ok(lines.length > 2);
  for (const line of lines) assert.ok(JSON.parse(line).message);
});

/** A run in the background, its stderr gathered as it comes, for tests that signal it midway. */
function startRun(args: string[]) {
  const child = spawn(process.execPath, [animindBin, 'pipeline', 'run', ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    child,
    closed,
    stderr: () => stderr,
    async waitFor(text: string) {
      while (!stderr.includes(text)) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

test('SIGTERM stops a run with exit 130 and leaves no output file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-term-'));
  const run = startRun(['test/engine/pipelines/numbers.yaml', '--set', 'count=200000000', '--set', `out=${path.join(dir, 'n.jsonl')}`]);
  await run.waitFor('1/2 Count');
  await new Promise((r) => setTimeout(r, 300));
  run.child.kill('SIGTERM');
  assert.equal(await run.closed, 130);
  assert.match(run.stderr(), /error: interrupted by SIGTERM\n$/);
  assert.deepEqual(readdirSync(dir), []);
});

test('SIGTERM while the semantic-ID map loads: the one error line, no stack trace, no partial results logged', async () => {
  // A FIFO holds the source mid-read until the signal is in; then it ends, as a cut-off file would.
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-term-'));
  const fifo = path.join(dir, 'semantic_ids.jsonl');
  spawnSync('mkfifo', [fifo]);
  const run = startRun(['pipelines/prep.yaml', '--set', `semantic_ids=${fifo}`, '--set', `out_dir=${path.join(dir, 'out')}`]);
  await run.waitFor('1/8 Load semantic ID map');
  run.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  writeFileSync(fifo, '');
  assert.equal(await run.closed, 130);
  const after = run.stderr().slice(run.stderr().indexOf('1/8 Load semantic ID map'));
  // Before, the catalog logged "with a semantic id: 0" and the pools logged 0 rows after the signal.
  assert.doesNotMatch(after, /\[catalog\]|\[task_|Loaded semantic map|\n\s+at /);
  assert.match(run.stderr(), /error: interrupted by SIGTERM\n$/);
  assert.deepEqual(readdirSync(dir), ['semantic_ids.jsonl']);
});

test('the catalog pipeline joins semantic IDs with anime metadata on the bundled fixtures', async () => {
  const { code, stdout, stderr } = await runCli(['pipeline', 'run', 'pipelines/catalog.yaml', '--set', 'out=-', '--quiet']);
  assert.equal(code, 0, stderr);
  const rows = stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 791, 'the 800 semantic IDs less the 9 with no anime row');
  assert.ok(rows.every((r) => r.semantic_id.startsWith('<L1_') && r.anime.anime_id === r.anime_id));
});
