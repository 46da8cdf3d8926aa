import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { holdoutOptions, HoldoutSplitter, withHoldoutSum } from './holdout.ts';
import { userOf, type PoolItem } from './types.ts';

/**
 * Takes the rows of held-out users out of a pool before it is sampled, so the quotas are filled
 * from training users only. Rows without a user (Task A) pass.
 */
export default defineTransform({
  type: 'prep-drop-held-out',
  kind: 'transform',
  description: 'Drops the pool rows of held-out users (validation and test) before sampling.',
  options: withHoldoutSum(z.strictObject(holdoutOptions)),
  inputs: { in: port<PoolItem>() },
  stats: z.object({ dropped: z.number(), kept: z.number() }),
  create(ctx, inputs) {
    const splitter = new HoldoutSplitter(ctx.pipeline.seed, ctx.options);
    let dropped = 0;
    let kept = 0;
    Object.assign(ctx.stats, { dropped, kept });
    // A user's rows arrive together, so the user's split is worked out once for them all.
    let user: number | null = null;
    let heldOut = false;
    return inputs.ports.in.map((batch) => {
      const out = splitter.active ? [] : batch;
      if (splitter.active)
        for (const item of batch) {
          const of = userOf(item.row);
          if (of !== user) {
            user = of;
            heldOut = of !== null && splitter.splitOf(of) !== null;
          }
          if (heldOut) dropped++;
          else out.push(item);
        }
      kept += out.length;
      Object.assign(ctx.stats, { dropped, kept });
      return out;
    });
  },
});
