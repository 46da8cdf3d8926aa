import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineTransform, port, type NodeContext } from '../../engine/node.ts';
import { fromAsync, type Stream } from '../../engine/stream.ts';
import { ExampleStore } from './example-store.ts';
import { flag, int, num } from './option-types.ts';
import { layOutRows, packSequences, sequenceCompletionTokens, sequenceLength, type Sequence } from './packing.ts';
import { evalDue, optimizerSteps, totalSteps } from './schedule.ts';
import { loadTrainTokenizer } from './tokenizer.ts';
import { readAddedTokens, readTokenizerSettings } from './tokenizer-files.ts';
import { extendedTokenizerOptions, tokenizerDir } from './tokenizer-options.ts';
import type { MicroBatch, PhasePlan, TokenizedExample, TrainItem } from './types.ts';

const options = z.strictObject({
  ...extendedTokenizerOptions,
  phase: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/)
    .default('phase1_linking')
    .describe('phase name (its output folder)'),
  max_seq_len: int().positive().default(1024).describe('tokens per packed sequence; longer examples are truncated'),
  per_device_train_batch_size: int().positive().default(1).describe('packed sequences per training micro-batch'),
  per_device_eval_batch_size: int().positive().default(1).describe('packed sequences per eval micro-batch'),
  gradient_accumulation_steps: int().positive().default(16).describe('micro-batches per optimizer step'),
  epochs: int().positive().describe("passes over the phase's training examples"),
  eval_fraction: num()
    .min(0)
    .max(0.5)
    .default(0.02)
    .describe('share of rows held out for eval loss, chosen by row key'),
  eval_every_steps: int()
    .nonnegative()
    .default(500)
    .describe('eval after every this many steps, and at the end; 0: only at the end'),
  shuffle: flag(true).describe('new random order of packed sequences in every epoch (seeded)'),
  dry_run: flag(true).describe('cap the optimizer steps at dry_run_max_steps'),
  dry_run_max_steps: int().positive().default(20).describe('optimizer steps in a dry run'),
});

type Options = z.output<typeof options>;

const packStats = z.object({
  truncated: z.number(),
  dropped_without_completion: z.number(),
  train_examples: z.number(),
  eval_examples: z.number(),
  train_sequences: z.number(),
  eval_sequences: z.number(),
  packing_fill: z.number(),
  total_steps: z.number(),
});

type Context = NodeContext<Options, typeof packStats>;

/**
 * Caches the phase's tokenized examples (so the step count is known before the first batch),
 * holds out the eval share, packs both sides into sequences and hands the trainer the phase plan
 * followed by micro-batches, one per pull, grouped into optimizer steps.
 */
export default defineTransform({
  type: 'pack-steps',
  kind: 'transform',
  description:
    'Holds out eval rows, packs tokenized examples into sequences ' +
    'and emits the phase plan, then train/eval micro-batches.',
  options,
  inputs: { in: port<TokenizedExample>() },
  stats: packStats,
  create(ctx, inputs) {
    const cached = cacheExamples(ctx, inputs.ports.in);
    const padId = (async () => {
      const dir = tokenizerDir(ctx.options);
      const tokenizer = await loadTrainTokenizer(dir, readAddedTokens(ctx.options.semantic_vocab));
      return tokenizer.singleId(readTokenizerSettings(dir).padToken);
    })();
    // fromAsync, not _(promise).flatMap: a failed run stops it cleanly even while the cache is filling.
    async function* items() {
      const [stores, pad] = await Promise.all([cached, padId]);
      yield* phaseItems(ctx, stores, pad);
    }
    return fromAsync(items(), (fn) => ctx.onClose(fn));
  },
});

interface Stores {
  train: ExampleStore;
  held: ExampleStore;
  counts: { truncated: number; dropped_without_completion: number };
  groups: PhasePlan['rows'];
}

/** Reads every example, truncated to max_seq_len, into the train or the held-out store by its keyed draw. */
function cacheExamples(ctx: Context, input: Stream<TokenizedExample[]>): Promise<Stores> {
  const o = ctx.options;
  const stores: Stores = {
    train: new ExampleStore(),
    held: new ExampleStore(),
    counts: { truncated: 0, dropped_without_completion: 0 },
    groups: { train: {}, eval: {} },
  };
  const add = (example: TokenizedExample) => {
    let { ids, promptLen } = example;
    if (ids.length > o.max_seq_len) {
      stores.counts.truncated++;
      ids = ids.subarray(0, o.max_seq_len);
      promptLen = Math.min(promptLen, o.max_seq_len);
    }
    if (promptLen >= ids.length) return void stores.counts.dropped_without_completion++;
    const held = ctx.keyed.uniform(example.key, 'eval') < o.eval_fraction;
    (held ? stores.held : stores.train).add(ids, promptLen);
    const counts = held ? stores.groups.eval : stores.groups.train;
    const group = example.group ?? 'rows';
    counts[group] = (counts[group] ?? 0) + 1;
  };
  return new Promise<Stores>((resolve, reject) => {
    input
      .stopOnError(reject)
      .each((batch) => batch.forEach(add))
      .done(() => resolve(stores));
  });
}

/** The phase plan, then each optimizer step's micro-batches, with the eval batches after the steps they are due at. */
function* phaseItems(ctx: Context, { train, held, counts, groups }: Stores, pad: number): Generator<TrainItem[]> {
  const o = ctx.options;
  if (train.count === 0 && held.count === 0 && counts.dropped_without_completion === 0)
    throw new DataError('no rows to train on: the input had none');
  if (train.count === 0)
    throw new DataError('no training examples: every row was held out for eval or had no completion tokens');
  const trainSeqs = packSequences(train, o.max_seq_len);
  const evalSeqs = packSequences(held, o.max_seq_len);
  const schedule = {
    sequences: trainSeqs.length,
    batchSize: o.per_device_train_batch_size,
    accumulation: o.gradient_accumulation_steps,
    epochs: o.epochs,
    maxSteps: o.dry_run ? o.dry_run_max_steps : 0,
    epochOrder: o.shuffle ? (epoch: number) => ctx.rng(`epoch ${epoch}`) : undefined,
  };
  const plan: PhasePlan = {
    kind: 'phase',
    name: o.phase,
    totalSteps: totalSteps(schedule),
    epochs: o.epochs,
    trainExamples: train.count,
    evalExamples: held.count,
    trainSequences: trainSeqs.length,
    evalSequences: evalSeqs.length,
    rows: { train: sortedCounts(groups.train), eval: sortedCounts(groups.eval) },
  };
  report(ctx, plan, counts, fill(train, trainSeqs, o.max_seq_len));
  yield [plan];
  const microBatch = (store: ExampleStore, seqs: Sequence[], endsStep: boolean, stepTokens: number): MicroBatch => ({
    rows: seqs.length,
    ...layOutRows(store, seqs, o.max_seq_len, pad),
    endsStep,
    stepCompletionTokens: stepTokens,
  });
  let step = 0;
  for (const micro of optimizerSteps(schedule)) {
    step++;
    const seqs = micro.map((indices) => indices.map((i) => trainSeqs[i]!));
    const stepTokens = seqs.flat().reduce((n, s) => n + sequenceCompletionTokens(train, s), 0);
    for (const [k, group] of seqs.entries())
      yield [{ kind: 'batch', step, batch: microBatch(train, group, k === seqs.length - 1, stepTokens) }];
    if (evalDue(step, plan.totalSteps, o.eval_every_steps))
      for (let at = 0; at < evalSeqs.length; at += o.per_device_eval_batch_size) {
        const group = evalSeqs.slice(at, at + o.per_device_eval_batch_size);
        const tokens = group.reduce((n, s) => n + sequenceCompletionTokens(held, s), 0);
        yield [{ kind: 'eval', batch: microBatch(held, group, false, tokens) }];
      }
  }
}

/** Counts in key order, so the plan's JSON does not depend on arrival order. */
const sortedCounts = (counts: Record<string, number>) =>
  Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

const fill = (store: ExampleStore, seqs: Sequence[], maxSeqLen: number) =>
  seqs.reduce((n, s) => n + sequenceLength(store, s), 0) / (seqs.length * maxSeqLen);

function report(ctx: Context, plan: PhasePlan, counts: Stores['counts'], filled: number) {
  const o = ctx.options;
  Object.assign(ctx.stats, counts, {
    train_examples: plan.trainExamples,
    eval_examples: plan.evalExamples,
    train_sequences: plan.trainSequences,
    eval_sequences: plan.evalSequences,
    packing_fill: Number(filled.toFixed(4)),
    total_steps: plan.totalSteps,
  });
  const n = (x: number) => x.toLocaleString('en-US');
  ctx.progress.log(
    `${plan.name}: ${n(plan.trainExamples)} train examples in ` +
      `${n(plan.trainSequences)} sequences of ${n(o.max_seq_len)} tokens ` +
      `(${(filled * 100).toFixed(1)}% filled), ${n(plan.evalExamples)} ` +
      `held out; ${n(plan.totalSteps)} optimizer steps` +
      `${o.dry_run ? ' (dry run)' : ''}`,
  );
  if (counts.truncated)
    ctx.progress.warn(`${n(counts.truncated)} examples longer than ${o.max_seq_len} tokens were truncated`);
  if (counts.dropped_without_completion)
    ctx.progress.warn(
      `${n(counts.dropped_without_completion)} examples had no ` +
        `completion tokens left after truncation and were dropped`,
    );
  if (plan.evalExamples === 0) ctx.progress.warn('no rows were held out for eval, so no eval loss is reported');
}
