import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { trainerInput, type RecordedItem } from './trainer-input.ts';
import { trainWorkspace } from './train-cli.ts';

const { prep } = trainWorkspace(120);

/** Examples in a micro-batch: the position-0 starts that are not the padding tail. */
const examplesIn = (item: RecordedItem, pad: number) =>
  item.batch!.positionIds.filter((p, i) => p === 0 && item.batch!.inputIds[i] !== pad).length;

/** The items of each phase, in the order the trainer receives them. */
function byPhase(items: RecordedItem[]): Map<string, RecordedItem[]> {
  const phases = new Map<string, RecordedItem[]>();
  let current: RecordedItem[] = [];
  for (const item of items) {
    if (item.kind === 'phase') phases.set(item.name!, (current = []));
    current.push(item);
  }
  return phases;
}

test(
  'the trainer gets phase 1 then phase 2, each holding its task weights and the general ratio exactly, ' +
    'with English evals before training and at every eval point',
  { timeout: 120_000 },
  async () => {
    const items = await trainerInput(prep, {
      dry_run_sample_rows: 1000,
      eval_fraction: 0,
      max_seq_len: 1024,
      phase1_epochs: 1,
      phase2_epochs: 1,
      phase1_weight_task_a: 0.5,
      phase1_weight_task_b: 0.3,
      phase1_weight_task_c: 0.2,
      general_ratio: 0.2,
      eval_every_steps: 3,
    });
    const phases = byPhase(items);
    assert.deepEqual([...phases.keys()], ['phase1_linking', 'phase2_reasoning']);
    const pad = items.find((i) => i.kind === 'batch')!.batch!.inputIds.at(-1)!;

    // 120 prep rows: phase 1 takes A 60, B 36, C 24, and general rows 120 × .2/.8 = 30 (20% of 150).
    const phase1 = phases.get('phase1_linking')!;
    assert.deepEqual(phase1[0]!.rows, { train: { A: 60, B: 36, C: 24, 'instructions.jsonl': 30 }, eval: {} });
    const trained = phase1.filter((i) => i.kind === 'batch').reduce((n, i) => n + examplesIn(i, pad), 0);
    assert.equal(trained, 150, 'one epoch of the batches holds every example of the mix once');
    // Phase 2 at its default weights .10/.45/.45.
    assert.deepEqual(phases.get('phase2_reasoning')![0]!.rows, {
      train: { A: 12, B: 54, C: 54, 'instructions.jsonl': 30 },
      eval: {},
    });

    // English evals: once after the first plan (the base model), then at every eval point of each phase.
    const englishAfter = (phase: RecordedItem[]) => {
      const steps: number[] = [];
      let step = 0;
      for (const item of phase) {
        if (item.kind === 'batch') step = (item as { step?: number }).step!;
        if (item.english && steps.at(-1) !== step) steps.push(step);
      }
      return steps;
    };
    // Every 3 steps and at the end (one packed sequence a step here).
    const due = (phase: RecordedItem[]) => {
      const total = phase.filter((i) => i.kind === 'batch').length;
      return [...Array.from({ length: Math.floor((total - 1) / 3) }, (_, k) => 3 * (k + 1)), total];
    };
    assert.deepEqual(englishAfter(phase1), [0, ...due(phase1)]);
    const phase2 = phases.get('phase2_reasoning')!;
    assert.deepEqual(englishAfter(phase2), due(phase2));
    assert.ok(items.filter((i) => i.english).every((i) => i.kind === 'eval'));
  },
);
