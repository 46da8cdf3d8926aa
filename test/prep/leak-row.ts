/**
 * A node for the leakage tests (`use:` by path): passes the training rows on, then adds one row
 * that should never be there, made from the first held-out validation example: its Task B
 * `last`-mask row, under `as_user` (default: the held-out user, so both audit checks see it).
 */
import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { _, collectRows } from '../../engine/stream.ts';
import type { PrepRow } from '../../transforms/prep/prep-row.ts';
import type { HeldOutExample } from '../../transforms/prep/types.ts';

export const LEAKED_ID = 'prep_leaked';

/** The training row a held-out example would be, had its user not been held out. */
export function leakedRow(example: HeldOutExample, userId = example.user_id): PrepRow {
  const history = [...example.history, example.target_anime_id];
  return {
    example_id: LEAKED_ID,
    task: 'B',
    input: example.prompt,
    output: example.target_sid,
    anime_ids: history,
    user_id: userId,
    meta: {
      template_id: 'watch_sequence_mask',
      mask_mode: 'last',
      mask_index: example.history.length,
      history_len: history.length,
    },
  };
}

export default defineTransform({
  type: 'test-leak-row',
  kind: 'transform',
  description: 'Adds a leaked row (a held-out example as a training row) after the training rows.',
  options: z.strictObject({ as_user: z.int().optional() }),
  inputs: { in: port<PrepRow>(), valid: port<HeldOutExample>({ side: true }) },
  create(ctx, inputs) {
    const leaked = collectRows(inputs.ports.valid).then((examples) => {
      if (!examples.length) throw new Error('test-leak-row: no validation example to leak');
      return [leakedRow(examples[0]!, ctx.options.as_user)];
    });
    // Read once the rows have passed, by when the examples are in.
    leaked.catch(() => {});
    return inputs.ports.in.concat(_(leaked));
  },
});
