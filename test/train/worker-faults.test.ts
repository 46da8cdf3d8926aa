import { strict as assert } from 'node:assert';
import path from 'node:path';
import { test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { startCli, trainArgs, trainWorkspace } from './train-cli.ts';

const { dir, prep } = trainWorkspace();
const fakePython = path.join(import.meta.dirname, 'fake-python.sh');
const errorLines = (run: CliResult) => run.stderr.split('\n').filter((line) => line.startsWith('error:'));

test('a worker that does not speak our protocol version fails the run with one line', { timeout: 60_000 }, async () => {
  const run = await runCli(trainArgs(prep, path.join(dir, 'protocol')), {
    env: { ANIMIND_PYTHON: fakePython, FAKE_WORKER: 'protocol' },
  });
  assert.equal(run.code, 1, run.stderr);
  assert.deepEqual(errorLines(run), [
    "error: node 'train': trainer worker exited with code 2: unsupported protocol version 1 (this worker speaks 2)",
  ]);
});

test(
  'a worker killed in the middle of a batch fails the run with one line and no hang',
  { timeout: 60_000 },
  async () => {
    const run = await runCli(trainArgs(prep, path.join(dir, 'killed')), {
      env: { ANIMIND_PYTHON: fakePython, FAKE_WORKER: 'die-mid-batch' },
    });
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(errorLines(run), [
      "error: node 'train': trainer worker was killed by SIGKILL: fake worker: dying mid-batch",
    ]);
  },
);

test('Ctrl-C during training stops the real worker and exits 130', { timeout: 120_000 }, async () => {
  const python = await findPython('');
  const run = startCli(trainArgs(prep, path.join(dir, 'interrupted'), { dry_run_max_steps: 200, phase1_epochs: 50 }), {
    ANIMIND_PYTHON: python,
  });
  await run.until(/step 1\/\d+: loss/);
  const workers = run.workers();
  assert.equal(workers.length, 1, 'one worker process');
  run.child.kill('SIGINT');
  const { code, stderr } = await run.done;
  assert.equal(code, 130, stderr);
  assert.deepEqual(errorLines({ stderr } as CliResult), ['error: interrupted by SIGINT']);
  assert.throws(() => process.kill(workers[0]!, 0), /ESRCH/, 'the worker is gone');
});
