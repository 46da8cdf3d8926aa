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

const jsonText = new WeakMap<CatalogEntry, string>();

/** A semantic id as it reads inside a JSON string, worked out once per anime. */
function sidJson(entry: CatalogEntry): string {
  let text = jsonText.get(entry);
  if (text === undefined) jsonText.set(entry, (text = JSON.stringify(entry.sid).slice(1, -1)));
  return text;
}

/**
 * Steps 5–6, made when the row is written. The input is kilobytes of semantic ids, so its JSON
 * text is assembled from ids already in JSON form rather than serialized and scanned again.
 */
class TaskBRow implements DeferredRow {
  constructor(
    private readonly userId: number,
    private readonly mode: MaskMode,
    private readonly masked: number,
    private readonly sequence: Sequence,
    private readonly catalog: ReadonlyMap<number, CatalogEntry>,
  ) {}

  render(): PrepRow {
    return this.renderWithJson()[0];
  }

  renderWithJson(): [PrepRow, string] {
    const { masked, catalog } = this;
    const { anime_ids, sentiments } = this.sequence;
    const segments = new Array<string>(anime_ids.length);
    const jsonSegments = new Array<string>(anime_ids.length);
    let plain = true;
    for (let i = 0; i < anime_ids.length; i++) {
      const lead = i === 0 ? 'A user watched' : 'then watched';
      if (i === masked) segments[i] = jsonSegments[i] = `${lead} <anime_start>[MASK]<anime_end>`;
      else {
        const entry = catalog.get(anime_ids[i]!)!;
        const json = sidJson(entry);
        segments[i] = `${lead} <anime_start>${entry.sid}<anime_end> ${sentiments[i]}`;
        if (json === entry.sid) jsonSegments[i] = segments[i]!;
        else {
          plain = false;
          jsonSegments[i] = `${lead} <anime_start>${json}<anime_end> ${sentiments[i]}`;
        }
      }
    }
    const input = segments.join(' ');
    const row: PrepRow = {
      task: 'B',
      input,
      output: catalog.get(anime_ids[masked]!)!.sid,
      anime_ids,
      user_id: this.userId,
      meta: { template_id: 'watch_sequence_mask', mask_mode: this.mode, mask_index: masked, history_len: anime_ids.length },
    };
    const inputJson = plain ? input : jsonSegments.join(' ');
    const json = `"task":"B","input":"${inputJson}","output":${JSON.stringify(row.output)},"anime_ids":${JSON.stringify(anime_ids)},"user_id":${JSON.stringify(row.user_id)},"meta":${JSON.stringify(row.meta)}}`;
    return [row, json];
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
