import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineTransform, port, type Batch } from '../../engine/node.ts';
import { _, collectRows, type Stream } from '../../engine/stream.ts';
import { BottomK } from './bottom-k.ts';
import { HeldOutPairs, pairOfRow } from './holdout.ts';
import { numberOption } from './options.ts';
import { fillByPasses } from '../../engine/keyed-order.ts';
import { quotas, splitsProblem, targetMemoryProblem } from './quotas.ts';
import { untilStopped } from './streams.ts';
import type { HeldOutExample, PoolItem, WatchPair } from './types.ts';
import type { Task } from './prep-row.ts';

const PORTS = [
  ['a', 'A'],
  ['b', 'B'],
  ['c', 'C'],
] as const;

const WHY_EMPTY: Record<Task, string> = {
  A: 'no anime has both a semantic id and a usable metadata field',
  B: 'no user has task_b_min_history rows with an allowed status and a semantic id',
  C: 'no user has a liked anime (score >= task_b_positive_score_min) with a semantic id',
};

/** A row taken again in a later pass; its key, `<key>#<pass>`, is made when asked rather than held. */
class Repeat implements PoolItem {
  constructor(
    private readonly item: PoolItem,
    private readonly pass: number,
  ) {}

  get key(): string {
    return `${this.item.key}#${this.pass}`;
  }

  get row(): PoolItem['row'] {
    return this.item.row;
  }
}

const repeated = (item: PoolItem, pass: number): PoolItem => new Repeat(item, pass);

/**
 * Task B rows the sampler keeps beyond its quota. A training user's row may repeat a held-out
 * example's (history, target) pair (another user with the same watches in the same order); such
 * rows are set aside once the pools are read, and the next rows in the sample's order take their
 * places. The reserve is that many next rows: ~1% more memory, and far more than the repeats seen.
 */
export const reserveFor = (quota: number): number => (quota === 0 ? 0 : 1024 + Math.ceil(quota / 100));

/** A pool row's (history, target), made or deferred; undefined for rows that have none. */
const pairOfItem = (item: PoolItem): WatchPair | undefined =>
  'render' in item.row ? item.row.watchPair?.() : pairOfRow(item.row);

const perTask = z.record(z.string(), z.number());

export const sampleStats = z.object({
  target_examples: z.number(),
  splits: perTask,
  quotas: perTask,
  pools: perTask,
  oversampling_factor: perTask,
  passes: perTask,
  /** Task B rows set aside for repeating a held-out example's (history, target) pair. */
  held_out_pair_repeats: z.number(),
});

/**
 * Samples each task's pool to its quota while the pools stream in: a bottom-k sample on a keyed
 * priority, so memory is O(quota) and the result is the same for any order or batching.
 */
export default defineTransform({
  type: 'prep-sample',
  kind: 'transform',
  description:
    'Samples the Task A/B/C pools to their quotas (uniform, bounded memory; full passes when a pool is too small).',
  options: z
    .strictObject({
      // At least one: a target of 0 would write an empty dataset, which nothing downstream can use.
      target_examples: z
        .int()
        .min(1, { error: (issue) => `expected at least 1 row, got ${String(issue.input)}` })
        .describe('total rows: A = round_half_even(target × split_a), B likewise, C = the rest'),
      split_a: numberOption('share of Task A (semantic-id/metadata) rows').default(0.5),
      split_b: numberOption('share of Task B (watch sequence) rows').default(0.25),
      split_c: numberOption('share of Task C (reasoning) rows').default(0.25),
    })
    .superRefine((o, issues) => {
      const problem = splitsProblem(o);
      if (problem) issues.addIssue({ code: 'custom', path: ['split_a'], message: problem });
    }),
  // The held-out examples: Task B rows repeating one of their pairs are not sampled. A node run
  // without them (a test of sampling alone) holds nothing out.
  inputs: {
    a: port<PoolItem>(),
    b: port<PoolItem>(),
    c: port<PoolItem>(),
    valid: port<HeldOutExample>({ side: true }),
    test: port<HeldOutExample>({ side: true }),
  },
  stats: sampleStats,
  // The sample is held whole until the shuffle: a target past the heap is refused before any data is read.
  check({ target_examples: target }) {
    const problem = targetMemoryProblem(target, getHeapStatistics().heap_size_limit, totalmem());
    return problem ? [{ option: 'target_examples', message: problem }] : [];
  },
  create(ctx, inputs) {
    const { target_examples: target, ...splits } = ctx.options;
    const quota = quotas(target, splits);
    const keyOf = (item: PoolItem) => item.key;
    const samplers = {
      A: new BottomK(quota.A, keyOf),
      B: new BottomK(quota.B + reserveFor(quota.B), keyOf),
      C: new BottomK(quota.C, keyOf),
    };
    const pools: Record<Task, number> = { A: 0, B: 0, C: 0 };
    let pairs = new HeldOutPairs([]);
    Object.assign(ctx.stats, { target_examples: target, splits, quotas: quota, pools });
    // The pools share upstream forks (B and C both come from the user pass), so they are read together.
    const feeds: Stream<number>[] = PORTS.map(([port, task]) =>
      inputs.ports[port].map((batch) => {
        const sampler = samplers[task];
        for (const item of batch) sampler.offer(ctx.keyed.hash(item.key, '0'), item);
        pools[task] += batch.length;
        return batch.length;
      }),
    );
    const size = ctx.pipeline.batchSize;
    // The held-out examples are read beside the pools, so the sample is made as soon as all have ended.
    const heldOut = _(heldOutPairsOf(inputs.ports.valid, inputs.ports.test)).map((read) => {
      pairs = read;
      return 0;
    });
    const finish = (): PoolItem[][] => {
      const batches: PoolItem[][] = [];
      const oversampling: Record<string, number> = {};
      const passes: Record<string, number> = {};
      let repeats = 0;
      for (const [, task] of PORTS) {
        const q = quota[task];
        let pool = pools[task];
        let kept = samplers[task].take();
        if (task === 'B' && pairs.size) ({ kept, pool, repeats } = setAsideRepeats(kept, pool, q, pairs));
        if (q > 0 && pool === 0)
          throw new DataError(`Task ${task} pool is empty but its quota is ${q}: ${WHY_EMPTY[task]}`);
        const sample =
          pool >= q
            ? kept.slice(0, q)
            : fillByPasses(kept, q, (key, pass) => ctx.keyed.hash(key, String(pass)), repeated);
        oversampling[task] = pool >= q ? 1 : Number((q / pool).toFixed(6));
        passes[task] = pool === 0 ? 0 : Math.ceil(q / pool);
        for (let i = 0; i < sample.length; i += size) batches.push(sample.slice(i, i + size));
      }
      Object.assign(ctx.stats, { oversampling_factor: oversampling, passes, held_out_pair_repeats: repeats });
      ctx.progress.log(
        `Quotas ${PORTS.map(([, t]) => `${t} ${quota[t].toLocaleString('en-US')}`).join(', ')} ` +
          `from pools ${PORTS.map(([, t]) => `${t} ${pools[t].toLocaleString('en-US')}`).join(', ')}`,
      );
      return batches;
    };
    return untilStopped(_([...feeds, heldOut]).merge(), ctx.signal)
      .reduce(0, (n: number, size: number) => n + size)
      .flatMap(() => _(finish()));
  },
});

type Examples = Stream<Batch<HeldOutExample>> | undefined;

/** The held-out examples' pairs, from the side ports; none from a port the run did not connect. */
function heldOutPairsOf(valid: Examples, test: Examples): Promise<HeldOutPairs> {
  const rows = (port: Examples) => (port ? collectRows(port) : Promise.resolve([]));
  return Promise.all([rows(valid), rows(test)]).then(([v, t]) => new HeldOutPairs([...v, ...t]));
}

/**
 * The sampled Task B rows less those that repeat a held-out pair, and the pool they now stand
 * for: what is left of it when the sampler held it whole; otherwise it is still past the quota,
 * as long as the reserve covers the rows set aside.
 */
function setAsideRepeats(kept: PoolItem[], pool: number, quota: number, pairs: HeldOutPairs) {
  const left = kept.filter((item) => !pairs.find(pairOfItem(item)));
  const repeats = kept.length - left.length;
  if (kept.length < pool && left.length < quota)
    throw new DataError(
      `${repeats.toLocaleString('en-US')} of the ${kept.length.toLocaleString('en-US')} Task B rows ` +
        `sampled repeat a held-out example's (history, target) pair, more than the ` +
        `${reserveFor(quota).toLocaleString('en-US')} kept in reserve: lower holdout_valid and holdout_test`,
    );
  return { kept: left, pool: kept.length === pool ? left.length : pool, repeats };
}
