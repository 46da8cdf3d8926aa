import { defineTransform, port, z } from 'animind';

interface Row {
  task: string;
}

/** Keeps the prep rows of the chosen tasks, e.g. only Task B to study masked-item prediction. */
export default defineTransform({
  type: 'keep-task',
  kind: 'transform',
  description: 'Keeps prep rows whose task is in the list.',
  options: z.strictObject({
    tasks: z
      .array(z.enum(['A', 'B', 'C']))
      .min(1)
      .describe('tasks to keep'),
  }),
  // Typed ports: `inputs.ports.in` is a stream of Row batches.
  inputs: { in: port<Row>() },
  // Declared counters: another node reads them typed, with ctx.statsOf('only_b', z.object({ kept: z.number() })).
  stats: z.object({ kept: z.number() }),
  create(ctx, inputs) {
    const keep = new Set<string>(ctx.options.tasks);
    let kept = 0;
    return inputs.ports.in.map((batch) => {
      const out = batch.filter((row) => keep.has(row.task));
      kept += out.length;
      ctx.stats.kept = kept;
      return out;
    });
  },
});
