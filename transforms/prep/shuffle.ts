import { z } from 'zod';
import { defineTransform } from '../../engine/node.ts';
import { _, type Stream } from '../../engine/stream.ts';
import { intOption } from './options.ts';
import type { PoolItem, PrepExample } from './types.ts';

export const exampleId = (position: number) => `prep_${String(position).padStart(9, '0')}`;

/**
 * Shuffles all sampled rows together by a keyed priority of their unique keys (so the order is
 * a pure function of the seed and the rows), then numbers them `prep_000000001`, … .
 */
export default defineTransform({
  type: 'prep-shuffle',
  kind: 'transform',
  description: 'Shuffles the sampled rows of all tasks together (keyed by row key) and assigns example_id.',
  options: z.strictObject({
    batch_size: intOption('rows per batch handed downstream', 1).default(1024),
  }),
  inputs: { ports: ['in'] },
  create(ctx, inputs) {
    const size = ctx.options.batch_size;
    return (inputs.ports.in! as Stream<PoolItem[]>)
      .collect()
      .flatMap((batches) => {
        const order = batches.flat().map((item) => ({ p: ctx.keyed.hash(item.key), item }));
        order.sort((x, y) => x.p - y.p || (x.item.key < y.item.key ? -1 : 1));
        const out: PrepExample[][] = [];
        for (let start = 0; start < order.length; start += size) {
          const batch: PrepExample[] = [];
          for (let i = start; i < Math.min(start + size, order.length); i++) {
            const { task, input, output, anime_ids, user_id, meta } = order[i]!.item.row;
            batch.push({ example_id: exampleId(i + 1), task, input, output, anime_ids, user_id, meta });
          }
          out.push(batch);
        }
        ctx.stats.rows = order.length;
        return _(out);
      });
  },
});
