import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pty from 'node-pty';
import { animindBin, repoRoot } from '../helpers/cli.ts';

interface Session {
  output: () => string;
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<void>;
  exit: Promise<{ exitCode: number; signal?: number }>;
  term: pty.IPty;
}

/** Runs the CLI in a real pseudo-terminal, as a person at a shell would. */
function session(args: string[]): Session {
  const term = pty.spawn(process.execPath, [animindBin, ...args], {
    cols: 120,
    rows: 30,
    cwd: repoRoot,
    env: { ...process.env } as Record<string, string>,
  });
  let output = '';
  term.onData((data) => (output += data));
  const exit = new Promise<{ exitCode: number; signal?: number }>((resolve) => term.onExit(resolve));
  return {
    term,
    exit,
    output: () => output,
    waitFor: async (pattern, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; screen so far:\n${output}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

test('on a terminal, progress renders as bars: the stage bar and a per-source bar with a rate', async () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'animind-pty-')), 'numbers.jsonl');
  const run = session([
    'pipeline',
    'run',
    'test/engine/pipelines/numbers.yaml',
    '--set',
    'count=300000',
    '--set',
    `out=${out}`,
  ]);
  const { exitCode } = await run.exit;
  assert.equal(exitCode, 0, run.output());
  assert.match(run.output(), /2\/2 Write \|[█░]+\|/);
  assert.match(run.output(), /write written \|[█░]*\| 300000\/0 rows|write written \| 300000 rows \| [\d,]+\/s/);
  assert.ok(existsSync(out));
});

test('Ctrl-C stops a run with exit 130 and leaves no output files', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-pty-'));
  const run = session([
    'pipeline',
    'run',
    'test/engine/pipelines/numbers.yaml',
    '--set',
    'count=200000000',
    '--set',
    `out=${path.join(dir, 'numbers.jsonl')}`,
  ]);
  await run.waitFor(/write written/);
  run.term.write('\x03');
  const { exitCode } = await run.exit;
  assert.equal(exitCode, 130, run.output());
  assert.match(run.output(), /error: interrupted by SIGINT/);
  assert.deepEqual(readdirSync(dir), []);
});

test(
  "on a terminal, prep's user pass is a bar of user-id " + 'ranges with an ETA, beside its running count of users',
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'animind-pty-'));
    const run = session(['pipeline', 'run', 'pipelines/prep.yaml', '--set', `out_dir=${dir}`]);
    const { exitCode } = await run.exit;
    assert.equal(exitCode, 0, run.output());
    assert.match(run.output(), /history user-id ranges \|[█░]+\| 256\/256 ranges \| [\d,]+\/s \| ETA/);
    assert.match(run.output(), /history users \| 300 users \| [\d,]+\/s/);
  },
);
