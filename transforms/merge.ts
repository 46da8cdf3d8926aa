import { z } from 'zod';
import { defineTransform, port } from '../engine/node.ts';
import { _ } from '../engine/stream.ts';

/**
 * Concatenates its inputs in the order `from` lists them. Interleaving by arrival would make the
 * output depend on timing; concatenation keeps it deterministic.
 */
export default defineTransform({
  type: 'merge',
  kind: 'transform',
  description: 'Concatenates several inputs in the order listed in from (deterministic fan-in).',
  options: z.strictObject({}),
  inputs: { in: port() },
  variadic: true,
  create(_ctx, inputs) {
    return _(inputs.list).sequence();
  },
});
