import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { runCli } from '../helpers/cli.ts';
import { startCli, trainArgs, trainWorkspace } from './train-cli.ts';

const { dir, prep } = trainWorkspace(60);
let python: string;
/** Two micro-batches of two sequences a step: the global batch, whatever the number of ranks. */
const settings = { dry_run_max_steps: 4, max_seq_len: 192, eval_every_steps: 2, master_port: 29517 };
const args = (out: string, ranks: number) => trainArgs(prep, out, { ...settings, nproc_per_node: ranks });

const summaryOf = (out: string) =>
  JSON.parse(readFileSync(path.join(out, 'dry_run', 'train_run_summary.json'), 'utf8')) as {
    runtime: { world_size?: number };
    phases: { name: string; step_losses: number[] }[];
  };

/** The largest difference between two runs' final adapters, tensor by tensor. */
function weightDifference(a: string, b: string): number {
  const script = `
import sys
from safetensors.torch import load_file
a, b = (load_file(p + "/dry_run/final_model/adapter_model.safetensors") for p in sys.argv[1:3])
assert a.keys() == b.keys()
print(max(float((a[k].double() - b[k].double()).abs().max()) for k in a))`;
  const result = spawnSync(python, ['-c', script, a, b], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return Number(result.stdout.trim());
}

before(async () => {
  python = await findPython('');
});

test(
  'two CPU ranks (gloo) train what one rank does: the same per-step losses and final weights',
  { timeout: 300_000 },
  async () => {
    const one = path.join(dir, 'one');
    const two = path.join(dir, 'two');
    for (const [out, ranks] of [
      [one, 1],
      [two, 2],
    ] as const) {
      const run = await runCli(args(out, ranks), { env: { ANIMIND_PYTHON: python } });
      assert.equal(run.code, 0, run.stderr.slice(-3000));
      if (ranks === 2) assert.match(run.stderr, /tokens\/s over 2 ranks \(rank 0: /);
    }
    assert.equal(summaryOf(two).runtime.world_size, 2);
    const losses = (out: string) => summaryOf(out).phases.flatMap((p) => p.step_losses);
    const [a, b] = [losses(one), losses(two)];
    assert.equal(a.length, b.length);
    a.forEach((loss, i) => assert.ok(Math.abs(loss - b[i]!) <= 1e-5, `step ${i + 1}: ${loss} vs ${b[i]}`));
    assert.ok(weightDifference(one, two) <= 1e-5);
  },
);

test('a rank that dies ends the run with one line naming it, and nothing hangs', { timeout: 300_000 }, async () => {
  const run = startCli(args(path.join(dir, 'killed'), 2), { ANIMIND_PYTHON: python });
  await run.until(/step 1\/\d+: loss/);
  const workers = run.workers();
  assert.equal(workers.length, 2, 'one worker a rank');
  process.kill(workers[1]!, 'SIGKILL'); // rank 1, started second
  const { code, stderr } = await run.done;
  assert.equal(code, 1, stderr);
  const errors = stderr.split('\n').filter((line) => line.startsWith('error:'));
  assert.equal(errors.length, 1, stderr.slice(-3000));
  assert.match(errors[0]!, /^error: node 'train': trainer rank 1 was killed by SIGKILL/);
  for (const pid of workers) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
});
