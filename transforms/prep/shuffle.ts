import { z } from 'zod';
import { defineTransform } from '../../engine/node.ts';
import { fromGenerator, type Stream } from '../../engine/stream.ts';
import { intOption } from './options.ts';
import { attachJsonLines } from '../../sinks/json-lines.ts';
import { poolRow, type PoolItem, type PrepExample } from './types.ts';

export const exampleId = (position: number) => `prep_${String(position).padStart(9, '0')}`;

/** Positions of `items` ordered by (priority, key): the priorities of unique keys almost never tie. */
function shuffledOrder(items: readonly PoolItem[], priority: (key: string) => number): Uint32Array {
  const priorities = new Float64Array(items.length);
  for (let i = 0; i < items.length; i++) priorities[i] = priority(items[i]!.key);
  return new Uint32Array(items.length)
    .map((_, i) => i)
    .sort((a, b) => priorities[a]! - priorities[b]! || (items[a]!.key < items[b]!.key ? -1 : 1));
}

/**
 * Shuffles all sampled rows together by a keyed priority of their unique keys (so the order is
 * a pure function of the seed and the rows), then numbers them `prep_000000001`, … . Rows are
 * made batch by batch as they are pulled, so only the batches in flight hold their text.
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
    return (inputs.ports.in! as Stream<PoolItem[]>).collect().flatMap((batches) => {
      const items = batches.flat();
      const order = shuffledOrder(items, (key) => ctx.keyed.hash(key));
      ctx.stats.rows = items.length;
      return fromGenerator(function* () {
        for (let start = 0; start < order.length; start += size) {
          const batch: PrepExample[] = [];
          // The JSON lines of the rows that assemble their own.
          const lines: (string | undefined)[] = [];
          for (let i = start; i < Math.min(start + size, order.length); i++) {
            const item = items[order[i]!]!;
            const example_id = exampleId(i + 1);
            const [row, line] = 'renderWithJson' in item.row ? item.row.renderWithJson!(`{"example_id":"${example_id}",`) : [poolRow(item)];
            const { task, input, output, anime_ids, user_id, meta } = row;
            batch.push({ example_id, task, input, output, anime_ids, user_id, meta });
            lines.push(line);
          }
          attachJsonLines(batch, () => batch.map((example, j) => lines[j] ?? JSON.stringify(example)));
          yield batch;
        }
      });
    });
  },
});
