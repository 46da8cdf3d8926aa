import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { intOption } from './options.ts';
import type { HistoryRow, Seed, UserHistory } from './types.ts';

/** The user's liked anime: score >= min, by score desc then anime_id asc. */
export function likedAnime(rows: readonly HistoryRow[], positiveMin: number): number[] {
  return rows
    .filter((row) => (row.score ?? 0) >= positiveMin)
    .sort((a, b) => (b.score ?? 0) - (a.score ?? 0) || a.anime_id - b.anime_id)
    .map((row) => row.anime_id);
}

/** A user's Task C seeds: `single` from one liked anime, `triple` from three. */
export function userSeeds(history: UserHistory, positiveMin: number): Seed[] {
  const liked = likedAnime(history.rows, positiveMin);
  const seeds: Seed[] = [];
  if (liked.length >= 1) seeds.push({ user_id: history.user_id, kind: 'single', anime_ids: liked.slice(0, 1) });
  if (liked.length >= 3) seeds.push({ user_id: history.user_id, kind: 'triple', anime_ids: liked.slice(0, 3) });
  return seeds;
}

/**
 * Task C seeds for every user with filtered rows, short histories included; for users with a
 * Task B history the liked anime come from the kept (truncated) history.
 */
export default defineTransform({
  type: 'prep-task-c-seeds',
  kind: 'transform',
  description: 'Picks each user’s Task C seeds from their liked anime: single (top 1) and triple (top 3).',
  options: z.strictObject({
    task_b_positive_score_min: intOption('a score at least this high counts as liked').default(7),
  }),
  inputs: { in: port<UserHistory>() },
  stats: z.object({ single: z.number(), triple: z.number(), users_with_seed: z.number(), seeds: z.number() }),
  create(ctx, inputs) {
    const positiveMin = ctx.options.task_b_positive_score_min;
    const counts = { single: 0, triple: 0, users_with_seed: 0 };
    Object.assign(ctx.stats, counts);
    return inputs.ports.in.map((batch) => {
      const out: Seed[] = [];
      for (const history of batch) {
        const seeds = userSeeds(history, positiveMin);
        if (seeds.length) counts.users_with_seed++;
        for (const seed of seeds) {
          counts[seed.kind]++;
          out.push(seed);
        }
      }
      Object.assign(ctx.stats, counts, { seeds: counts.single + counts.triple });
      return out;
    });
  },
});
