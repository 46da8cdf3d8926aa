import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { holdoutOptions, HoldoutSplitter, withHoldoutSum } from './holdout.ts';
import { intOption } from './options.ts';
import { atEnd, withCatalog } from './streams.ts';
import { sentiment, taskBRow } from './task-b.ts';
import { madeRow, type CatalogEntry, type HeldOutExample, type UserHistory } from './types.ts';

/**
 * A held-out user's example: the kept history's last watch is the target, and the prompt is the
 * Task B `last`-mask input of the whole history (made by Task B's own row, so the two texts cannot
 * drift apart). None for a history too short for Task B, or of fewer than two watches (no watch
 * would be left to show).
 */
export function heldOutExample(
  history: UserHistory,
  catalog: ReadonlyMap<number, CatalogEntry>,
  positiveMin: number,
): HeldOutExample | undefined {
  const { user_id, rows } = history;
  if (!history.eligible || rows.length < 2) return undefined;
  const last = rows.length - 1;
  const row = madeRow(taskBRow({ user_id, rows, mask_mode: 'last', mask_index: last }, catalog, positiveMin).row);
  return {
    user_id,
    history: row.anime_ids.slice(0, last),
    target_anime_id: row.anime_ids[last]!,
    target_sid: row.output,
    target_sentiment: sentiment(rows[last]!, positiveMin),
    history_len: last,
    prompt: row.input,
  };
}

/** What a held-out node counts; the summary reports them. */
export const heldOutStats = z.object({
  holdout_valid: z.number(),
  holdout_test: z.number(),
  /** Held-out users of this split that the user pass passed on (those with a kept watch). */
  users: z.number(),
  examples: z.number(),
  /** Held-out users with no example: too short for Task B. */
  short_users: z.number(),
});

/** The examples of one split's held-out users, in user_id order (the order the user pass gives). */
export default defineTransform({
  type: 'prep-held-out',
  kind: 'transform',
  description:
    'Builds the evaluation examples of held-out users (keyed by seed and user id): ' +
    'the Task B last-mask prompt of the kept history, and its last watch as the target.',
  options: withHoldoutSum(
    z.strictObject({
      split: z.enum(['valid', 'test']).describe('which held-out users: valid (holdout_valid) or test (holdout_test)'),
      ...holdoutOptions,
      task_b_positive_score_min: intOption('a score at least this high is <liked> (as in Task B)').default(7),
    }),
  ),
  inputs: { in: port<UserHistory>(), catalog: port<CatalogEntry>({ side: true }) },
  stats: heldOutStats,
  create(ctx, inputs) {
    const { split, holdout_valid, holdout_test, task_b_positive_score_min: positiveMin } = ctx.options;
    const splitter = new HoldoutSplitter(ctx.pipeline.seed, { holdout_valid, holdout_test });
    const counts = { users: 0, examples: 0, short_users: 0 };
    Object.assign(ctx.stats, { holdout_valid, holdout_test }, counts);
    const rows = withCatalog<UserHistory, HeldOutExample>(
      inputs.ports.catalog,
      inputs.ports.in,
      (catalog) => (batch) => {
        const out: HeldOutExample[] = [];
        if (!splitter.active) return out;
        for (const history of batch) {
          if (splitter.splitOf(history.user_id) !== split) continue;
          counts.users++;
          const example = heldOutExample(history, catalog, positiveMin);
          if (example) out.push(example);
          else counts.short_users++;
        }
        counts.examples += out.length;
        Object.assign(ctx.stats, counts);
        return out;
      },
    );
    return atEnd(rows, () => {
      if (splitter.active)
        ctx.progress.log(
          `Held out for ${split}: ${counts.users.toLocaleString('en-US')} users, ` +
            `${counts.examples.toLocaleString('en-US')} examples`,
        );
    });
  },
});
