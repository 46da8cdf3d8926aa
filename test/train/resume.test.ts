import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { runCli } from '../helpers/cli.ts';
import { startCli, trainArgs, trainWorkspace } from './train-cli.ts';

const { dir, prep } = trainWorkspace(80);
let python: string;

/** Short phases with a checkpoint every 2 steps: 6 steps each. */
const settings = { dry_run_max_steps: 6, checkpoint_every_steps: 2, eval_every_steps: 3, max_seq_len: 192 };
const args = (out: string, overrides: Record<string, string | number> = {}) =>
  trainArgs(prep, out, { ...settings, ...overrides });

/** Starts a training run in the background. */
const startRun = (out: string, overrides: Record<string, string | number> = {}) =>
  startCli(args(out, overrides), { ANIMIND_PYTHON: python });

interface Summary {
  phases: { name: string; step_losses: number[] }[];
}

const summaryOf = (out: string): Summary =>
  JSON.parse(readFileSync(path.join(out, 'dry_run', 'train_run_summary.json'), 'utf8')) as Summary;
const losses = (out: string) => summaryOf(out).phases.map((p) => [p.name, p.step_losses]);

/** The largest difference between two runs' final adapters, tensor by tensor. */
function weightDifference(a: string, b: string): number {
  const script = `
import sys
from safetensors.torch import load_file
a, b = (load_file(p + "/dry_run/final_model/adapter_model.safetensors") for p in sys.argv[1:3])
assert a.keys() == b.keys(), (sorted(a), sorted(b))
print(max(float((a[k].double() - b[k].double()).abs().max()) for k in a))`;
  const result = spawnSync(python, ['-c', script, a, b], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return Number(result.stdout.trim());
}

const reference = path.join(dir, 'reference');

before(async () => {
  python = await findPython('');
  const run = await runCli(args(reference), { env: { ANIMIND_PYTHON: python } });
  assert.equal(run.code, 0, run.stderr.slice(-3000));
});

for (const phase of ['phase1_linking', 'phase2_reasoning'])
  test(
    `a worker killed with SIGKILL in ${phase} resumes from latest with the uninterrupted run's losses and weights`,
    { timeout: 300_000 },
    async () => {
      const out = path.join(dir, `killed-${phase}`);
      const run = startRun(out);
      await run.until(new RegExp(`checkpoint \\S+${phase}/checkpoint-4`));
      process.kill(run.workers()[0]!, 'SIGKILL');
      assert.equal((await run.done).code, 1);

      const resumed = await runCli(args(out, { resume_from: 'latest' }), { env: { ANIMIND_PYTHON: python } });
      assert.equal(resumed.code, 0, resumed.stderr.slice(-3000));
      assert.match(resumed.stderr, new RegExp(`resuming from \\S+${phase}/checkpoint-4: ${phase} after step 4`));
      assert.deepEqual(losses(out), losses(reference));
      assert.ok(weightDifference(out, reference) <= 1e-6);
    },
  );

test(
  'SIGTERM checkpoints at the end of the step and exits 75; the resumed run continues exactly ' +
    '(a changed W&B run name is allowed, a changed seed is refused)',
  { timeout: 300_000 },
  async () => {
    const out = path.join(dir, 'preempted');
    const run = startRun(out);
    await run.until(/phase1_linking step 3\/\d+: loss/);
    run.child.kill('SIGTERM');
    const preempted = await run.done;
    assert.equal(preempted.code, 75, preempted.stderr.slice(-3000));
    const errors = preempted.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(errors.length, 1, preempted.stderr.slice(-3000));
    assert.match(errors[0]!, /preempted: checkpoint \S+phase1_linking\/checkpoint-\d+ .*resume_from = "latest"/);

    const refused = await runCli(args(out, { resume_from: 'latest', seed: 7 }), { env: { ANIMIND_PYTHON: python } });
    assert.equal(refused.code, 2, refused.stderr.slice(-3000));
    assert.match(refused.stderr, /error: .*resume_from: \S+ was trained with seed = 42, this run sets 7/);

    const resumed = await runCli(args(out, { resume_from: 'latest', wandb_run_name: 'second-try' }), {
      env: { ANIMIND_PYTHON: python },
    });
    assert.equal(resumed.code, 0, resumed.stderr.slice(-3000));
    assert.deepEqual(losses(out), losses(reference));
    assert.ok(weightDifference(out, reference) <= 1e-6);
  },
);
