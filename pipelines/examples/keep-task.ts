import { z } from 'zod';
import { defineTransform } from '../../engine/node.ts';

/** Keeps the prep rows of the chosen tasks, e.g. only Task B to study masked-item prediction. */
export default defineTransform({
  type: 'keep-task',
  kind: 'transform',
  description: 'Keeps prep rows whose task is in the list.',
  options: z.strictObject({
    tasks: z.array(z.enum(['A', 'B', 'C'])).min(1).describe('tasks to keep'),
  }),
  inputs: { ports: ['in'] },
  create(ctx, inputs) {
    const keep = new Set<string>(ctx.options.tasks);
    let kept = 0;
    return inputs.ports.in!.map((batch) => {
      const out = batch.filter((row: { task: string }) => keep.has(row.task));
      kept += out.length;
      ctx.stats.kept = kept;
      return out;
    });
  },
});
