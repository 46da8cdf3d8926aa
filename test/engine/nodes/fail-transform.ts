import { z } from 'zod';
import { defineTransform, port } from '../../../engine/node.ts';
import { DataError } from '../../../engine/errors.ts';

/** Throws when it meets row number `at`, as a node with bad data would, naming the option that chose it. */
export default defineTransform({
  type: 'fail-transform',
  kind: 'transform',
  description: 'test transform: fails on a given row',
  options: z.strictObject({ at: z.int() }),
  inputs: { in: port<{ n: number }>() },
  create(ctx, inputs) {
    return inputs.ports.in.map((batch) => {
      for (const row of batch) if (row.n === ctx.options.at) throw new DataError(`row ${row.n} is bad`, { key: 'at' });
      return batch;
    });
  },
});
