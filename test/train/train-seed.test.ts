import { strict as assert } from 'node:assert';
import path from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { defineSink, port } from '../../engine/node.ts';
import { createReporter } from '../../engine/progress.ts';
import { runPlan } from '../../engine/runtime.ts';
import type { TrainItem } from '../../transforms/train/types.ts';
import { repoRoot } from '../helpers/cli.ts';
import { loadTestPlan } from '../helpers/plan.ts';
import { QWEN_TOKENIZER, trainWorkspace } from './train-cli.ts';

const { prep } = trainWorkspace(120);

/** Stands in for the trainer: keeps every item pack-steps hands it, token ids as plain arrays. */
const recorder = (into: unknown[]) =>
  defineSink({
    type: 'record',
    kind: 'sink',
    description: 'records what the trainer would receive',
    options: z.object({}),
    inputs: { in: port<TrainItem>() },
    async create(_ctx, inputs) {
      for (const batch of await inputs.ports.in.collect().toPromise(Promise))
        for (const item of batch)
          into.push(
            JSON.parse(
              JSON.stringify(item, (_key, value: unknown) =>
                ArrayBuffer.isView(value) ? Array.from(value as Int32Array) : value,
              ),
            ),
          );
    },
  });

/** What pipelines/train.yaml would feed the worker, its trainer swapped for a recorder. */
async function trainerInput(params: Record<string, string | number>): Promise<unknown[]> {
  const plan = await loadTestPlan(path.join(repoRoot, 'pipelines/train.yaml'), {
    train_jsonl: prep,
    tokenizer_path: QWEN_TOKENIZER,
    tiny_model: 'true',
    max_seq_len: 64,
    per_device_train_batch_size: 1,
    gradient_accumulation_steps: 1,
    dry_run_max_steps: 1000,
    epochs: 2,
    ...params,
  });
  const items: unknown[] = [];
  const train = plan.nodes.find((node) => node.spec.id === 'train')!;
  train.def = recorder(items);
  train.options = {};
  await runPlan(plan, { reporter: createReporter({ mode: 'quiet', format: 'text' }) });
  return items;
}

type Item = { kind: string; batch?: { inputIds: number[] } };
const ids = (items: unknown[], kind: string) =>
  (items as Item[]).filter((i) => i.kind === kind).map((i) => JSON.stringify(i.batch!.inputIds));
const sorted = (values: string[]) => [...values].sort();

test(
  'the train seed drives the dry-run sample, the eval hold-out ' +
    'and the epoch shuffle; the same seed gives the same bytes',
  { timeout: 120_000 },
  async () => {
    // Every row kept, none held out: only the shuffle is random.
    const whole = { dry_run_sample_rows: 1000, eval_fraction: 0 };
    const shuffled = await trainerInput({ ...whole, seed: 42 });
    assert.deepEqual(await trainerInput({ ...whole, seed: 42 }), shuffled, 'same seed, same batches');
    const reshuffled = await trainerInput({ ...whole, seed: 7 });
    assert.notDeepEqual(ids(reshuffled, 'batch'), ids(shuffled, 'batch'), 'another seed orders the epochs differently');
    assert.deepEqual(sorted(ids(reshuffled, 'batch')), sorted(ids(shuffled, 'batch')), '... of the same sequences');

    // A fifth held out: which rows is the seed's choice (eval batches come in a fixed order).
    const heldOut = (seed: number) =>
      trainerInput({ dry_run_sample_rows: 1000, eval_fraction: 0.2, seed }).then((items) => ids(items, 'eval'));
    assert.notDeepEqual(await heldOut(7), await heldOut(42), 'another seed holds out other rows');

    // A sample of 30 of the 120 rows: which rows is the seed's choice.
    const sampled = (seed: number) =>
      trainerInput({ dry_run_sample_rows: 30, eval_fraction: 0, seed }).then((items) => sorted(ids(items, 'batch')));
    assert.notDeepEqual(await sampled(7), await sampled(42), 'another seed samples other rows');
  },
);
