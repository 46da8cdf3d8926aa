import { z } from 'zod';
import { encodedBatch, jsonString } from '../../engine/encoded-batch.ts';
import { defineTransform, port, rowStats } from '../../engine/node.ts';
import { collectOnce, fromGenerator } from '../../engine/stream.ts';
import { keyedOrder } from '../../engine/keyed-order.ts';
import { RowLines } from './row-lines.ts';
import { madeRow, type PoolItem } from './types.ts';
import { PREP_ROW_COLUMNS, type PrepRow, type TaskRow } from './prep-row.ts';

export const exampleId = (position: number) => `prep_${String(position).padStart(9, '0')}`;

/** Writes a made row's line as JSON.stringify of the example would, content span marked. */
function encodeExample(out: RowLines, example_id: string, row: TaskRow): PrepRow {
  const { task, input, output, anime_ids, user_id, meta } = row;
  out.head(example_id);
  out.contentStart();
  // contentJson(row), then the rest, each as one string written at once: a native write costs
  // more than joining the few short pieces of a Task A or C line.
  out.text(`"task":${jsonString(task)},"input":${jsonString(input)},"output":${jsonString(output)}`);
  out.contentEnd();
  out.text(
    `,"anime_ids":${JSON.stringify(anime_ids)},"user_id":${JSON.stringify(user_id)},"meta":${JSON.stringify(meta)}}`,
  );
  out.endLine();
  return { example_id, task, input, output, anime_ids, user_id, meta };
}

/**
 * Shuffles all sampled rows together by a keyed priority of their unique keys (so the order is
 * a pure function of the seed and the rows), then numbers them `prep_000000001`, … . Rows are
 * made batch by batch as they are pulled, straight into JSON Lines bytes (see RowLines), so only
 * the batches in flight hold their text.
 */
export default defineTransform({
  type: 'prep-shuffle',
  kind: 'transform',
  description: 'Shuffles the sampled rows of all tasks together (keyed by row key) and assigns example_id.',
  options: z.strictObject({}),
  inputs: { in: port<PoolItem>() },
  columns: PREP_ROW_COLUMNS,
  stats: rowStats,
  create(ctx, inputs) {
    const size = ctx.pipeline.batchSize;
    return collectOnce(inputs.ports.in).flatMap((batches) => {
      const items = batches.flat();
      const order = keyedOrder(items, (key) => ctx.keyed.hash(key));
      // Only the rows, in their new order: the items and their keys can go now, and each row
      // goes once it is written, so what the shuffle holds shrinks as the output grows. A loop,
      // not Array.from with an arrow: a closure over `items` would put it in the scope the
      // generator below keeps, and hold every item and key to the end (~35 MB at 400k rows).
      const rows = new Array<PoolItem['row'] | undefined>(order.length);
      for (let i = 0; i < order.length; i++) rows[i] = items[order[i]!]!.row;
      ctx.stats.rows = rows.length;
      return fromGenerator<PrepRow[]>(function* () {
        // Batches are alike in size, so each starts with room for the last one's bytes.
        let capacity = 1 << 20;
        for (let start = 0; start < rows.length; start += size) {
          const stop = Math.min(start + size, rows.length);
          const out = new RowLines(capacity);
          const batch: PrepRow[] = [];
          for (let i = start; i < stop; i++) {
            const row = rows[i]!;
            rows[i] = undefined;
            const example_id = exampleId(i + 1);
            batch.push('encode' in row ? row.encode!(out, example_id) : encodeExample(out, example_id, madeRow(row)));
          }
          const lines = out.finish();
          capacity = lines.bytes.length + (lines.bytes.length >> 3);
          yield encodedBatch(batch, lines);
        }
      });
    });
  },
});
