import { z } from 'zod';
import { defineTransform } from '../../engine/node.ts';
import { intOption } from './options.ts';
import { atEnd, withCatalog } from './streams.ts';
import type { CatalogEntry, MaskedHistory, PoolItem, WatchRow } from './types.ts';

/** Task B step 5 sentiment of one watch. */
export function sentiment(row: Pick<WatchRow, 'score' | 'watching_status'>, positiveMin: number): string {
  if (row.watching_status === 4) return '<dropped>';
  const score = row.score ?? 0;
  if (score >= positiveMin) return '<liked>';
  if (score > 0 && score <= Math.max(1, Math.floor(positiveMin / 2))) return '<disliked>';
  return '<watch>';
}

/** The Task B row of one masked history (steps 5–6). */
export function taskBRow(history: MaskedHistory, catalog: ReadonlyMap<number, CatalogEntry>, positiveMin: number): PoolItem {
  const { rows, mask_index: masked } = history;
  const segments = new Array<string>(rows.length);
  const animeIds = new Array<number>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    animeIds[i] = row.anime_id;
    const lead = i === 0 ? 'A user watched' : 'then watched';
    segments[i] =
      i === masked
        ? `${lead} <anime_start>[MASK]<anime_end>`
        : `${lead} <anime_start>${catalog.get(row.anime_id)!.sid}<anime_end> ${sentiment(row, positiveMin)}`;
  }
  return {
    key: `B:${history.user_id}:${history.mask_mode}`,
    row: {
      task: 'B',
      input: segments.join(' '),
      output: catalog.get(rows[masked]!.anime_id)!.sid,
      anime_ids: animeIds,
      user_id: history.user_id,
      meta: { template_id: 'watch_sequence_mask', mask_mode: history.mask_mode, mask_index: masked, history_len: rows.length },
    },
  };
}

/** Task B pool: one masked watch-sequence row per (user, mask mode). */
export default defineTransform({
  type: 'prep-task-b',
  kind: 'transform',
  description: 'Builds the Task B pool: watch sequences with sentiment tags and one masked semantic id.',
  options: z.strictObject({
    task_b_positive_score_min: intOption('a score at least this high is <liked>; 0 < score <= max(1, floor(min/2)) is <disliked>').default(7),
  }),
  inputs: { ports: ['masks', 'catalog'], side: ['catalog'] },
  create(ctx, inputs) {
    const positiveMin = ctx.options.task_b_positive_score_min;
    let pool = 0;
    ctx.stats.pool = pool;
    const rows = withCatalog<MaskedHistory, PoolItem>(inputs.ports.catalog!, inputs.ports.masks!, (catalog) => (batch) => {
      const out = new Array<PoolItem>(batch.length);
      for (let i = 0; i < batch.length; i++) out[i] = taskBRow(batch[i]!, catalog, positiveMin);
      pool += batch.length;
      ctx.stats.pool = pool;
      return out;
    });
    return atEnd(rows, () => ctx.progress.log(`Task B pool: ${pool.toLocaleString('en-US')} rows`));
  },
});
