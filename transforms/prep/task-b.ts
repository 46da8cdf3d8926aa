import { z } from 'zod';
import { defineTransform } from '../../engine/node.ts';
import { intOption } from './options.ts';
import { atEnd, withCatalog } from './streams.ts';
import type { CatalogEntry, DeferredRow, HistoryRow, MaskedHistory, MaskMode, PoolItem, PrepRow } from './types.ts';

/** Task B step 5 sentiment of one watch. */
export function sentiment(row: Pick<HistoryRow, 'score' | 'watching_status'>, positiveMin: number): string {
  if (row.watching_status === 4) return '<dropped>';
  const score = row.score ?? 0;
  if (score >= positiveMin) return '<liked>';
  if (score > 0 && score <= Math.max(1, Math.floor(positiveMin / 2))) return '<disliked>';
  return '<watch>';
}

/** What a user's Task B rows are made from; the user's masked histories share it. */
interface Sequence {
  anime_ids: number[];
  sentiments: string[];
}

function sequenceOf(rows: readonly HistoryRow[], positiveMin: number): Sequence {
  return { anime_ids: rows.map((row) => row.anime_id), sentiments: rows.map((row) => sentiment(row, positiveMin)) };
}

/** Steps 5–6, made when the row is written. */
class TaskBRow implements DeferredRow {
  constructor(
    private readonly userId: number,
    private readonly mode: MaskMode,
    private readonly masked: number,
    private readonly sequence: Sequence,
    private readonly catalog: ReadonlyMap<number, CatalogEntry>,
  ) {}

  render(): PrepRow {
    const { masked, catalog } = this;
    const { anime_ids, sentiments } = this.sequence;
    const segments = new Array<string>(anime_ids.length);
    for (let i = 0; i < anime_ids.length; i++) {
      const lead = i === 0 ? 'A user watched' : 'then watched';
      segments[i] = i === masked ? `${lead} <anime_start>[MASK]<anime_end>` : `${lead} <anime_start>${catalog.get(anime_ids[i]!)!.sid}<anime_end> ${sentiments[i]}`;
    }
    return {
      task: 'B',
      input: segments.join(' '),
      output: catalog.get(anime_ids[masked]!)!.sid,
      anime_ids,
      user_id: this.userId,
      meta: { template_id: 'watch_sequence_mask', mask_mode: this.mode, mask_index: masked, history_len: anime_ids.length },
    };
  }
}

/** The Task B row of one masked history, deferred (see PoolItem); `sequence` may be shared with the user's other masks. */
export function taskBRow(history: MaskedHistory, catalog: ReadonlyMap<number, CatalogEntry>, positiveMin: number, sequence = sequenceOf(history.rows, positiveMin)): PoolItem {
  const { user_id, mask_mode, mask_index } = history;
  return { key: `B:${user_id}:${mask_mode}`, row: new TaskBRow(user_id, mask_mode, mask_index, sequence, catalog) };
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
      let sequence: Sequence | undefined;
      for (let i = 0; i < batch.length; i++) {
        const history = batch[i]!;
        // A user's masks arrive together and share one history.
        if (i === 0 || history.rows !== batch[i - 1]!.rows) sequence = sequenceOf(history.rows, positiveMin);
        out[i] = taskBRow(history, catalog, positiveMin, sequence);
      }
      pool += batch.length;
      ctx.stats.pool = pool;
      return out;
    });
    return atEnd(rows, () => ctx.progress.log(`Task B pool: ${pool.toLocaleString('en-US')} rows`));
  },
});
