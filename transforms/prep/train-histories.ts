import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { holdoutOptions, HoldoutSplitter, withHoldoutSum } from './holdout.ts';
import type { UserHistory } from './types.ts';

/** A training user's kept watch history, oldest first: what the evaluation's baselines learn from. */
export interface TrainHistory {
  user_id: number;
  anime_ids: number[];
}

/**
 * The kept histories (Task B's order and filters) of the users that are not held out, so the
 * baselines of the evaluation (most-popular, item-kNN, SASRec) learn from exactly the users the
 * model trains on: llm_prep_train_histories.jsonl.
 */
export default defineTransform({
  type: 'prep-train-histories',
  kind: 'transform',
  description: "The training users' kept watch histories ({user_id, anime_ids}), for the evaluation's baselines.",
  options: withHoldoutSum(z.strictObject({ ...holdoutOptions })),
  inputs: { in: port<UserHistory>() },
  stats: z.object({ users: z.number() }),
  create(ctx, inputs) {
    const splitter = new HoldoutSplitter(ctx.pipeline.seed, ctx.options);
    let users = 0;
    ctx.stats.users = 0;
    return inputs.ports.in.map((batch) => {
      const out: TrainHistory[] = [];
      for (const { user_id, eligible, rows } of batch)
        if (eligible && splitter.splitOf(user_id) === null)
          out.push({ user_id, anime_ids: rows.map((r) => r.anime_id) });
      ctx.stats.users = users += out.length;
      return out;
    });
  },
});
