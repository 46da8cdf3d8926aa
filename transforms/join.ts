import { z } from 'zod';
import { defineTransform, port } from '../engine/node.ts';
import { _, collectRows } from '../engine/stream.ts';

type Row = Record<string, unknown>;

const options = z.strictObject({
  on: z.string().min(1).describe('key field, present in both inputs'),
  how: z.enum(['inner', 'left']).default('inner').describe('inner drops main rows with no match; left keeps them'),
  as: z
    .string()
    .min(1)
    .optional()
    .describe('nest the matched lookup row under this field instead of merging its fields'),
});

/**
 * Joins a large main stream with a small lookup table (a side input, materialized once into a
 * Map). Merged rows take the lookup's fields first, so the main row's own fields win.
 */
export default defineTransform({
  type: 'join',
  kind: 'transform',
  description: 'Joins the main stream with a small lookup table on a key (side input held in memory).',
  options,
  inputs: { main: port<Row>(), lookup: port<Row>({ side: true }) },
  stats: z.object({ matched: z.number(), unmatched: z.number() }),
  create(ctx, inputs) {
    const { on, how, as } = ctx.options;
    const table = collectRows(inputs.ports.lookup).then((rows) => new Map(rows.map((row) => [row[on], row])));
    let matched = 0;
    let unmatched = 0;
    return _(table).flatMap((lookup) =>
      inputs.ports.main.map((batch) => {
        const out: Row[] = [];
        for (const row of batch) {
          const found = lookup.get(row[on]);
          if (found) matched++;
          else unmatched++;
          if (!found && how === 'inner') continue;
          out.push(as ? { ...row, [as]: found ?? null } : { ...found, ...row });
        }
        ctx.stats.matched = matched;
        ctx.stats.unmatched = unmatched;
        return out;
      }),
    );
  },
});
