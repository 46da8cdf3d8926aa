import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import packSteps from '../../transforms/train/pack-steps.ts';
import { ExampleStore } from '../../transforms/train/example-store.ts';
import { layOutRows, packSequences } from '../../transforms/train/packing.ts';
import { optimizerSteps, totalSteps } from '../../transforms/train/schedule.ts';
import { IGNORE_INDEX, type TokenizedExample, type TrainItem } from '../../transforms/train/types.ts';
import { runTransform } from '../../engine/run-node.ts';
import { QWEN_TOKENIZER } from './train-cli.ts';

/** Example i: `length` ids starting at 1000 × (i + 1), the first `prompt` of them the prompt. */
const example = (i: number, length: number, prompt: number): TokenizedExample => ({
  key: `prep_${i}`,
  ids: Int32Array.from({ length }, (_, k) => 1000 * (i + 1) + k),
  promptLen: prompt,
});

function storeOf(lengths: number[]): ExampleStore {
  const store = new ExampleStore();
  lengths.forEach((length, i) => {
    const e = example(i, length, Math.ceil(length / 2));
    store.add(e.ids, e.promptLen);
  });
  return store;
}

describe('packing', () => {
  test('next-fit in input order: whole examples, a new sequence when the next one does not fit', () => {
    const store = storeOf([5, 4, 3, 8, 2, 2, 10]);
    assert.deepEqual(packSequences(store, 10), [
      { first: 0, end: 2 },
      { first: 2, end: 3 },
      { first: 3, end: 5 },
      { first: 5, end: 6 },
      { first: 6, end: 7 },
    ]);
  });

  test('positions restart at 0 for every example and for the padding tail; labels only on completions', () => {
    const store = storeOf([4, 3, 6]);
    const rows = layOutRows(store, packSequences(store, 8), 8, 7);
    assert.equal(rows.seqLen, 8);
    assert.deepEqual([...rows.positionIds], [0, 1, 2, 3, 0, 1, 2, 0, /**/ 0, 1, 2, 3, 4, 5, 0, 1]);
    assert.deepEqual(
      [...rows.inputIds],
      [1000, 1001, 1002, 1003, 2000, 2001, 2002, 7, /**/ 3000, 3001, 3002, 3003, 3004, 3005, 7, 7],
    );
    const I = IGNORE_INDEX;
    assert.deepEqual([...rows.labels], [I, I, 1002, 1003, I, I, 2002, I, /**/ I, I, I, 3003, 3004, 3005, I, I]);
  });

  test('rows are as long as the longest, rounded up to a multiple of 8', () => {
    const store = storeOf([3, 9]);
    assert.equal(layOutRows(store, packSequences(store, 64), 64, 0).seqLen, 16);
  });
});

describe('step schedule', () => {
  const options = {
    sequences: 10,
    batchSize: 2,
    accumulation: 2,
    epochs: 2,
    maxSteps: 0,
    epochOrder: (e: number) => xoroshiro128plus(e),
  };

  test('every sequence once per epoch, in micro-batches grouped into optimizer steps', () => {
    const steps = [...optimizerSteps(options)];
    assert.equal(totalSteps(options), 5);
    assert.equal(steps.length, 5);
    const flat = steps.flat();
    assert.equal(flat.length, 10);
    assert.deepEqual(
      flat
        .slice(0, 5)
        .flat()
        .sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.deepEqual(
      flat
        .slice(5)
        .flat()
        .sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.notDeepEqual(flat.slice(0, 5), flat.slice(5), 'each epoch has its own order');
  });

  test('the same options give the same batches; a dry run caps the steps', () => {
    assert.deepEqual([...optimizerSteps(options)], [...optimizerSteps(options)]);
    assert.equal([...optimizerSteps({ ...options, maxSteps: 2 })].length, 2);
    assert.deepEqual([...optimizerSteps({ ...options, epochOrder: undefined })][0], [
      [0, 1],
      [2, 3],
    ]);
  });
});

describe('pack-steps node', () => {
  const base = {
    base_model: 'unused',
    tokenizer_path: QWEN_TOKENIZER,
    semantic_vocab: 'fixtures/semantic_vocab.json',
    max_seq_len: 16,
    per_device_train_batch_size: 2,
    gradient_accumulation_steps: 3,
    epochs: 1,
    eval_fraction: 0.1,
    dry_run: false,
  };
  const examples = Array.from({ length: 200 }, (_, i) => example(i, 3 + (i % 6), 2));
  const run = (exs: TokenizedExample[], options: Record<string, unknown> = {}) =>
    runTransform<TrainItem>(packSteps, { ...base, ...options }, { in: [exs.slice(0, 77), exs.slice(77)] });

  test(
    'the phase plan comes first; each step carries its ' + 'completion-token count; only its last micro-batch ends it',
    async () => {
      const { rows, stats } = await run(examples);
      const [plan, ...rest] = rows;
      assert.equal(plan?.kind, 'phase');
      if (plan?.kind !== 'phase') return;
      const batches = rest.filter((r) => r.kind === 'batch');
      assert.equal(new Set(batches.map((b) => b.step)).size, plan.totalSteps);
      assert.equal(plan.trainExamples + plan.evalExamples, 200);
      for (let step = 1; step <= plan.totalSteps; step++) {
        const micro = batches.filter((b) => b.step === step).map((b) => b.batch);
        const labelled = micro.reduce((n, b) => n + b.labels.filter((l) => l !== IGNORE_INDEX).length, 0);
        assert.ok(micro.every((b) => b.stepCompletionTokens === labelled));
        assert.deepEqual(
          micro.map((b) => b.endsStep),
          micro.map((_, k) => k === micro.length - 1),
        );
      }
      assert.equal(rest.at(-1)?.kind, 'eval', 'eval after the last step');
      assert.equal(stats.total_steps, plan.totalSteps);
    },
  );

  test('held-out rows are chosen by key: the same rows whatever the input order', async () => {
    const evalKeys = async (exs: TokenizedExample[]) => {
      const { rows } = await run(exs);
      const firstIds = rows.flatMap((r) =>
        r.kind === 'eval' ? [...r.batch.inputIds].filter((id, k) => r.batch.positionIds[k] === 0 && id >= 1000) : [],
      );
      return firstIds.map((id) => Math.floor(id / 1000) - 1).sort((a, b) => a - b);
    };
    const forward = await evalKeys(examples);
    assert.ok(forward.length > 5 && forward.length < 40, `${forward.length} held out`);
    assert.deepEqual(await evalKeys([...examples].reverse()), forward);
  });

  test('too-long examples are truncated and counted; one with no completion left is dropped', async () => {
    const { rows, stats } = await run([example(0, 40, 10), example(1, 30, 20), example(2, 5, 2)], { eval_fraction: 0 });
    assert.equal(stats.truncated, 2);
    assert.equal(stats.dropped_without_completion, 1);
    const batch = rows.find((r) => r.kind === 'batch');
    assert.ok(batch?.kind === 'batch' && batch.batch.seqLen === 16);
  });

  test('eval runs every eval_every_steps steps and after the last; dry runs stop at dry_run_max_steps', async () => {
    const { rows } = await run(examples, {
      per_device_train_batch_size: 1,
      gradient_accumulation_steps: 1,
      eval_every_steps: 3,
      dry_run: true,
      dry_run_max_steps: 7,
    });
    const afterSteps: number[] = [];
    rows.forEach((r, i) => {
      const previous = rows[i - 1];
      if (r.kind === 'eval' && previous?.kind === 'batch') afterSteps.push(previous.step);
    });
    assert.deepEqual(afterSteps, [3, 6, 7]);
  });
});
