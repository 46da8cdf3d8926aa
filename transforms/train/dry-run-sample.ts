import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { _ } from '../../engine/stream.ts';
import { flag, int } from './option-types.ts';

type Row = Record<string, unknown>;

interface Candidate {
  rank: number;
  index: number;
  row: Row;
}

/**
 * A dry run trains on a sample of the rows. The sample is the `rows` rows with the smallest keyed
 * hash: the same rows whatever the input order, spread over the whole file (prep output may be
 * grouped by task), and kept in a buffer of at most 2 × rows. Sampled rows keep their input order.
 */
export default defineTransform({
  type: 'dry-run-sample',
  kind: 'transform',
  description:
    'In a dry run, keeps a deterministic sample of rows keyed ' +
    'by a field (input order kept); otherwise passes every row.',
  options: z.strictObject({
    dry_run: flag(true).describe('sample only in a dry run; a full run passes every row'),
    rows: int().positive().default(2048).describe('rows kept in a dry run'),
    key_field: z
      .string()
      .min(1)
      .default('example_id')
      .describe('field the sample is keyed on (row number when missing)'),
  }),
  inputs: { in: port<Row>() },
  stats: z.object({ rows_in: z.number(), rows_kept: z.number() }),
  create(ctx, inputs) {
    const input = inputs.ports.in;
    const { dry_run, rows: limit, key_field } = ctx.options;
    if (!dry_run) return input;
    const kept: Candidate[] = [];
    let index = 0;
    const trim = () => {
      kept.sort((a, b) => a.rank - b.rank || a.index - b.index);
      kept.length = Math.min(kept.length, limit);
    };
    return input.consume<Row[]>((error, batch, push, next) => {
      if (error) return (push(error), next());
      if (!_.isNil(batch)) {
        for (const row of batch) {
          const key = row[key_field] ?? index;
          kept.push({ rank: ctx.keyed.uniform(String(key), 'sample'), index: index++, row });
          if (kept.length >= 2 * limit) trim();
        }
        return next();
      }
      trim();
      kept.sort((a, b) => a.index - b.index);
      ctx.stats.rows_in = index;
      ctx.stats.rows_kept = kept.length;
      ctx.progress.log(
        `dry run: training on ${kept.length.toLocaleString('en-US')} of ${index.toLocaleString('en-US')} rows`,
      );
      if (kept.length)
        push(
          null,
          kept.map((c) => c.row),
        );
      push(null, batch);
    });
  },
});
