import path from 'node:path';
import { z } from 'zod';
import { defineSink, port } from '../../engine/node.ts';
import { createReporter } from '../../engine/progress.ts';
import { runPlan } from '../../engine/runtime.ts';
import type { TrainItem } from '../../transforms/train/types.ts';
import { repoRoot } from '../helpers/cli.ts';
import { loadTestPlan } from '../helpers/plan.ts';
import { BUNDLED_ENGLISH, BUNDLED_INSTRUCTIONS, QWEN_TOKENIZER } from './train-cli.ts';

/** Stands in for the trainer: keeps every item it would be handed, token ids as plain arrays. */
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

/** What pipelines/train.yaml would feed the worker for the prep rows in `prep`, its trainer swapped for a recorder. */
export async function trainerInput(prep: string, params: Record<string, string | number>): Promise<RecordedItem[]> {
  const plan = await loadTestPlan(path.join(repoRoot, 'pipelines/train.yaml'), {
    train_jsonl: prep,
    tokenizer_path: QWEN_TOKENIZER,
    tiny_model: 'true',
    general_sources: BUNDLED_INSTRUCTIONS,
    english_eval_dataset: BUNDLED_ENGLISH,
    eval_max_samples: 4,
    max_seq_len: 64,
    per_device_train_batch_size: 1,
    gradient_accumulation_steps: 1,
    dry_run_max_steps: 1000,
    phase1_epochs: 2,
    phase2_epochs: 1,
    ...params,
  });
  const items: RecordedItem[] = [];
  const train = plan.nodes.find((node) => node.spec.id === 'train')!;
  train.def = recorder(items);
  train.options = {};
  await runPlan(plan, { reporter: createReporter({ mode: 'quiet', format: 'text' }) });
  return items;
}

export interface RecordedItem {
  kind: string;
  name?: string;
  english?: boolean;
  rows?: { train: Record<string, number>; eval: Record<string, number> };
  batch?: { inputIds: number[]; positionIds: number[]; labels: number[] };
}

/** Each train (or eval) micro-batch's token ids, as text, in order. */
export const batchIds = (items: RecordedItem[], kind: string) =>
  items.filter((i) => i.kind === kind && !i.english).map((i) => JSON.stringify(i.batch!.inputIds));
