import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { runCli } from '../helpers/cli.ts';
import { trainArgs, trainWorkspace } from './train-cli.ts';

const { dir, prep } = trainWorkspace(40);

interface EnglishEval {
  step: number;
  perplexity: number;
  tokens: number;
}

/** The English evals of a one-step-per-phase dry run whose English batches hold `batchSize` sequences. */
async function englishEvals(batchSize: number): Promise<EnglishEval[]> {
  const out = path.join(dir, `batch-${batchSize}`);
  const run = await runCli(
    trainArgs(prep, out, {
      dry_run_max_steps: 1,
      max_seq_len: 128,
      eval_max_samples: 12,
      english_eval_batch_size: batchSize,
    }),
    { env: { ANIMIND_PYTHON: await findPython('') } },
  );
  assert.equal(run.code, 0, run.stderr.slice(-3000));
  const summary = JSON.parse(readFileSync(path.join(out, 'dry_run', 'train_run_summary.json'), 'utf8'));
  return summary.phases.flatMap((p: { english_evals: EnglishEval[] }) => p.english_evals);
}

test(
  'English perplexity is token-weighted over the same texts whatever the eval batch size',
  { timeout: 300_000 },
  async () => {
    const one = await englishEvals(1);
    const four = await englishEvals(4);
    assert.deepEqual(
      one.map((e) => [e.step, e.tokens]),
      four.map((e) => [e.step, e.tokens]),
    );
    // Before training (step 0) and after each phase's step, the same model: equal up to float sums.
    for (const [i, e] of one.entries())
      assert.ok(Math.abs(e.perplexity / four[i]!.perplexity - 1) < 1e-5, `${e.perplexity} vs ${four[i]!.perplexity}`);
  },
);
