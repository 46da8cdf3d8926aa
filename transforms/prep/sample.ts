import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineTransform, port } from '../../engine/node.ts';
import { _ } from '../../engine/stream.ts';
import { BottomK } from './bottom-k.ts';
import { numberOption } from './options.ts';
import { fillByPasses } from '../../engine/keyed-order.ts';
import { quotas, splitsProblem, targetMemoryProblem } from './quotas.ts';
import type { PoolItem } from './types.ts';
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

const perTask = z.record(z.string(), z.number());

export const sampleStats = z.object({
  target_examples: z.number(),
  splits: perTask,
  quotas: perTask,
  pools: perTask,
  oversampling_factor: perTask,
  passes: perTask,
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
  inputs: { a: port<PoolItem>(), b: port<PoolItem>(), c: port<PoolItem>() },
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
    const samplers = { A: new BottomK(quota.A, keyOf), B: new BottomK(quota.B, keyOf), C: new BottomK(quota.C, keyOf) };
    const pools: Record<Task, number> = { A: 0, B: 0, C: 0 };
    Object.assign(ctx.stats, { target_examples: target, splits, quotas: quota, pools });
    // The pools share upstream forks (B and C both come from the user pass), so they are read together.
    const feeds = PORTS.map(([port, task]) =>
      inputs.ports[port].map((batch) => {
        const sampler = samplers[task];
        for (const item of batch) sampler.offer(ctx.keyed.hash(item.key, '0'), item);
        pools[task] += batch.length;
        return batch.length;
      }),
    );
    const size = ctx.pipeline.batchSize;
    const finish = (): PoolItem[][] => {
      const batches: PoolItem[][] = [];
      const oversampling: Record<string, number> = {};
      const passes: Record<string, number> = {};
      for (const [, task] of PORTS) {
        const [q, pool] = [quota[task], pools[task]];
        if (q > 0 && pool === 0)
          throw new DataError(`Task ${task} pool is empty but its quota is ${q}: ${WHY_EMPTY[task]}`);
        const kept = samplers[task].take();
        const sample =
          pool >= q ? kept : fillByPasses(kept, q, (key, pass) => ctx.keyed.hash(key, String(pass)), repeated);
        oversampling[task] = pool >= q ? 1 : Number((q / pool).toFixed(6));
        passes[task] = pool === 0 ? 0 : Math.ceil(q / pool);
        for (let i = 0; i < sample.length; i += size) batches.push(sample.slice(i, i + size));
      }
      Object.assign(ctx.stats, { oversampling_factor: oversampling, passes });
      ctx.progress.log(
        `Quotas ${PORTS.map(([, t]) => `${t} ${quota[t].toLocaleString('en-US')}`).join(', ')} ` +
          `from pools ${PORTS.map(([, t]) => `${t} ${pools[t].toLocaleString('en-US')}`).join(', ')}`,
      );
      return batches;
    };
    return _(feeds)
      .merge()
      .reduce(0, (n: number, size: number) => n + size)
      .flatMap(() => _(finish()));
  },
});
