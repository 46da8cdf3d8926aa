import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { test } from 'node:test';
import { animindBin, repoRoot, runCli } from '../helpers/cli.ts';
import { waitUntil, within } from '../helpers/wait.ts';

test('`animind pipeline run … | head -3` ends quietly with exit 0', () => {
  const script =
    `node ${animindBin} pipeline run test/engine/pipelines/numbers.yaml --set count=2000000 | head -3; ` +
    'echo "status=${PIPESTATUS[0]}" >&2';
  const result = spawnSync('bash', ['-c', script], { cwd: repoRoot, encoding: 'utf8' });
  assert.deepEqual(result.stdout.trim().split('\n'), [
    '{"n":0,"key":"k0"}',
    '{"n":1,"key":"k1"}',
    '{"n":2,"key":"k2"}',
  ]);
  assert.match(result.stderr, /status=0/);
  assert.doesNotMatch(result.stderr, /EPIPE|Error|error:/);
});

test('stdout carries only data; logs go to stderr', async () => {
  const { code, stdout, stderr } = await runCli([
    'pipeline',
    'run',
    'test/engine/pipelines/numbers.yaml',
    '--set',
    'count=10',
  ]);
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
  const rows = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    rows.map((r) => r.key),
    ['a', 'b'],
  );
  assert.ok(rows.every((r) => Number.isInteger(r.draw)));
});

test('invalid JSON on stdin is one line naming <stdin> and the line', async () => {
  const { code, stdout, stderr } = await runCli(['pipeline', 'run', 'test/engine/pipelines/relay.yaml', '--quiet'], {
    input: '{"key":"a"}\n{oops\n',
  });
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.match(stderr, /^error: <stdin>:2: node 'rows': invalid JSON .*expected one JSON object per line\n$/);
});

test('--log-format json writes one JSON object per log line', async () => {
  const { code, stderr } = await runCli([
    'pipeline',
    'run',
    'test/engine/pipelines/numbers.yaml',
    '--set',
    'count=10',
    '--set',
    'out=/dev/null',
    '--log-format',
    'json',
  ]);
  assert.equal(code, 0);
  const lines = stderr.trim().split('\n').slice(0, -1);
  assert.ok(lines.length > 2);
  for (const line of lines) assert.ok(JSON.parse(line).message);
});

/**
 * Preloaded into a run that a test signals: once the run's own SIGTERM listener has run (it
 * aborts the run synchronously; this one, registered first, defers to the next turn), it says so
 * on fd 3, so a test can wait for the signal to be in instead of guessing how long that takes. A
 * run that exits at once never says it; its end tells the same. Signal listeners keep no process
 * alive, and the run's own listener is in place whenever a test signals, so the run ends as it
 * would without this one.
 */
const SIGNAL_PROBE =
  'data:text/javascript,import { writeSync } from "node:fs";' +
  'process.on("SIGTERM", () => setImmediate(() => writeSync(3, "SIGTERM handled\\n")));';

/** A run in the background, its stderr gathered as it comes, for tests that signal it midway. */
function startRun(args: string[]) {
  const child = spawn(process.execPath, ['--import', SIGNAL_PROBE, animindBin, 'pipeline', 'run', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let probe = '';
  let ended = false;
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const handled = new Promise<void>((resolve) =>
    (child.stdio[3] as Readable)
      .setEncoding('utf8')
      .on('data', (d: string) => (probe += d).includes('SIGTERM handled') && resolve()),
  );
  const closed = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      ended = true;
      resolve(code);
    }),
  );
  /** Resolves once the run's stderr includes `text`; fails if the run ends first or after `timeoutMs`. */
  const waitFor = (text: string, timeoutMs?: number) => {
    let stop = () => {};
    const seen = new Promise<void>((resolve, reject) => {
      const check = () => stderr.includes(text) && resolve();
      const onClose = (code: number | null) =>
        reject(new Error(`the run ended (exit code ${code}) before saying ${JSON.stringify(text)}:\n${stderr}`));
      child.stderr!.on('data', check);
      child.on('close', onClose);
      stop = () => {
        child.stderr!.off('data', check);
        child.off('close', onClose);
      };
      if (ended) onClose(child.exitCode);
      check();
    });
    const what = () => `the run's stderr to say ${JSON.stringify(text)}; it said:\n${stderr}`;
    return within(seen, what, timeoutMs).finally(stop);
  };
  return {
    child,
    /** The exit code, once the run has ended; fails if it has not ended in time. */
    closed: () => within(closed, () => `the run to end; its stderr so far:\n${stderr}`),
    stderr: () => stderr,
    /** Waits for `text` on the run's stderr, with a deadline: a run that never says it fails, not hangs, the test. */
    waitFor,
    /** Sends SIGTERM and waits until the run's listener has aborted the run (or the run has ended). */
    async terminate() {
      child.kill('SIGTERM');
      await within(Promise.race([handled, closed]), () => `the run to handle SIGTERM; its stderr so far:\n${stderr}`);
    },
    /** Ends the run if a failed test left it running. */
    kill: () => ended || child.kill('SIGKILL'),
  };
}

test('SIGTERM stops a run with exit 130 and leaves no output file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-term-'));
  const out = path.join(dir, 'n.jsonl');
  const run = startRun(['test/engine/pipelines/numbers.yaml', '--set', 'count=200000000', '--set', `out=${out}`]);
  t.after(run.kill);
  await run.waitFor('1/2 Count');
  // Signalled once rows are in the output's temporary file, so "no output file" means it was removed.
  const written = () => readdirSync(dir).some((file) => statSync(path.join(dir, file)).size > 0);
  await waitUntil(written, () => `rows in the output's temporary file; the folder has ${readdirSync(dir).join(', ')}`);
  await run.terminate();
  assert.equal(await run.closed(), 130);
  assert.match(run.stderr(), /error: interrupted by SIGTERM\n$/);
  assert.deepEqual(readdirSync(dir), []);
});

test('SIGTERM while the semantic-ID map loads: one error line, no stack trace, no partial results', async (t) => {
  // A FIFO holds the source mid-read until the signal is in; then it ends, as a cut-off file would.
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-term-'));
  const fifo = path.join(dir, 'semantic_ids.jsonl');
  spawnSync('mkfifo', [fifo]);
  const out = path.join(dir, 'out');
  const run = startRun(['pipelines/prep.yaml', '--set', `semantic_ids=${fifo}`, '--set', `out_dir=${out}`]);
  t.after(run.kill);
  await run.waitFor('1/8 Load semantic ID map');
  // A non-blocking open of the FIFO's write end succeeds once the source has opened its read end
  // (a blocking one would hang this process if the run never did). Held open, it keeps the source
  // waiting for data.
  let writer: number | undefined;
  const opened = () => {
    try {
      writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENXIO') return false;
      throw error;
    }
  };
  await waitUntil(opened, 'the run to open the semantic-ID FIFO');
  try {
    await run.terminate();
  } finally {
    closeSync(writer!);
  }
  assert.equal(await run.closed(), 130);
  const after = run.stderr().slice(run.stderr().indexOf('1/8 Load semantic ID map'));
  // Before, the catalog logged "with a semantic id: 0" and the pools logged 0 rows after the signal.
  assert.doesNotMatch(after, /\[catalog\]|\[task_|Loaded semantic map|\n\s+at /);
  assert.match(run.stderr(), /error: interrupted by SIGTERM\n$/);
  assert.deepEqual(readdirSync(dir), ['semantic_ids.jsonl']);
});

test('the catalog pipeline joins semantic IDs with anime metadata on the bundled fixtures', async () => {
  const { code, stdout, stderr } = await runCli([
    'pipeline',
    'run',
    'pipelines/catalog.yaml',
    '--set',
    'out=-',
    '--quiet',
  ]);
  assert.equal(code, 0, stderr);
  const rows = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(rows.length, 791, 'the 800 semantic IDs less the 9 with no anime row');
  assert.ok(rows.every((r) => r.semantic_id.startsWith('<L1_') && r.anime.anime_id === r.anime_id));
});

test('a full device on stdout is one line naming standard output, exit 1', () => {
  const full = openSync('/dev/full', 'w');
  try {
    const run = spawnSync(
      process.execPath,
      [animindBin, 'pipeline', 'run', 'pipelines/catalog.yaml', '--set', 'out=-', '--quiet'],
      {
        cwd: repoRoot,
        stdio: ['ignore', full, 'pipe'],
        encoding: 'utf8',
      },
    );
    assert.equal(run.stderr, "error: node 'write': cannot write standard output: no space left on device (ENOSPC)\n");
    assert.equal(run.status, 1);
  } finally {
    closeSync(full);
  }
});
