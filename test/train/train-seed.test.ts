import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { batchIds, trainerInput, type RecordedItem } from './trainer-input.ts';
import { trainWorkspace } from './train-cli.ts';

const { prep } = trainWorkspace(120);

const trainerInputs = (params: Record<string, string | number>) => trainerInput(prep, params);
const ids = batchIds;
const sorted = (values: string[]) => [...values].sort();
const plans = (items: RecordedItem[]) => items.filter((i) => i.kind === 'phase').map((i) => i.rows);

test(
  'the train seed drives the dry-run sample, the phase mix, the eval hold-out ' +
    'and the epoch shuffle; the same seed gives the same bytes',
  { timeout: 120_000 },
  async () => {
    // Every row kept, none held out, none truncated: the seed chooses the mix's draws and the order.
    const whole = { dry_run_sample_rows: 1000, eval_fraction: 0, max_seq_len: 1024 };
    const shuffled = await trainerInputs({ ...whole, seed: 42 });
    assert.deepEqual(await trainerInputs({ ...whole, seed: 42 }), shuffled, 'same seed, same batches');
    const reshuffled = await trainerInputs({ ...whole, seed: 7 });
    assert.notDeepEqual(
      ids(reshuffled, 'batch'),
      ids(shuffled, 'batch'),
      'another seed orders the examples differently',
    );
    assert.deepEqual(plans(reshuffled), plans(shuffled), '... in the same numbers by task and source');

    // A fifth held out: which rows is the seed's choice (eval batches come in a fixed order).
    const heldOut = (seed: number) =>
      trainerInputs({ dry_run_sample_rows: 1000, eval_fraction: 0.2, seed }).then((items) => ids(items, 'eval'));
    assert.notDeepEqual(await heldOut(7), await heldOut(42), 'another seed holds out other rows');

    // A sample of 30 of the 120 rows: which rows is the seed's choice.
    const sampled = (seed: number) =>
      trainerInputs({ dry_run_sample_rows: 30, eval_fraction: 0, seed }).then((items) => sorted(ids(items, 'batch')));
    assert.notDeepEqual(await sampled(7), await sampled(42), 'another seed samples other rows');
  },
);
