import { z } from 'zod';
import { defineTransform, port } from '../../../engine/node.ts';

/** Tags each row with a keyed random draw: the value must not depend on batch boundaries. */
export default defineTransform({
  type: 'keyed-sample',
  kind: 'transform',
  description: 'test transform: keyed randomness',
  options: z.strictObject({}),
  inputs: { in: port<{ key: string }>() },
  create(ctx, inputs) {
    return inputs.ports.in.map((batch) => batch.map((row) => ({ ...row, draw: ctx.keyed.int(row.key, 1000) })));
  },
});
