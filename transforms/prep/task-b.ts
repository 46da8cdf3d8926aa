import { z } from 'zod';
import { defineTransform } from '../../engine/node.ts';
import { intOption } from './options.ts';
import { atEnd, withCatalog } from './streams.ts';
import type { CatalogEntry, DeferredRow, HistoryRow, MaskedHistory, MaskMode, PoolItem, PrepRow } from './types.ts';

const SENTIMENTS = ['<liked>', '<watch>', '<disliked>', '<dropped>'] as const;
const LEADS = ['A user watched', 'then watched'] as const;
// Built with join, not template literals: a template makes a cons string, and joining 30 of those
// into an input measured ~4x slower than joining flat ones.
const MASKED = LEADS.map((lead) => [lead, ' <anime_start>[MASK]<anime_end>'].join(''));

function sentimentCode(row: Pick<HistoryRow, 'score' | 'watching_status'>, positiveMin: number): number {
  if (row.watching_status === 4) return 3;
  const score = row.score ?? 0;
  if (score >= positiveMin) return 0;
  if (score > 0 && score <= Math.max(1, Math.floor(positiveMin / 2))) return 2;
  return 1;
}

/** Task B step 5 sentiment of one watch. */
export const sentiment = (row: Pick<HistoryRow, 'score' | 'watching_status'>, positiveMin: number): string => SENTIMENTS[sentimentCode(row, positiveMin)]!;

/** What a user's Task B rows are made from; the user's masked histories share it. */
interface Sequence {
  anime_ids: number[];
  /** Index into SENTIMENTS per position. */
  sentiments: number[];
}

function sequenceOf(rows: readonly HistoryRow[], positiveMin: number): Sequence {
  return { anime_ids: rows.map((row) => row.anime_id), sentiments: rows.map((row) => sentimentCode(row, positiveMin)) };
}

/** One anime's input segments for every (lead, sentiment), as text and as JSON string content. */
interface AnimeSegments {
  sid: string;
  text: string[];
  /** Undefined when the semantic id needs no JSON escaping, so `text` serves as is. */
  json: string[] | undefined;
}

/**
 * A catalog's Task B segments, made once per anime on first use and shared by every row: a row's
 * input is then one join of ready strings. The JSON forms let a row's JSON be assembled rather
 * than serialized, which would scan kilobytes of semantic ids again.
 */
class Segments {
  private readonly byAnime = new Map<number, AnimeSegments>();

  constructor(private readonly catalog: ReadonlyMap<number, CatalogEntry>) {}

  of(animeId: number): AnimeSegments {
    let segments = this.byAnime.get(animeId);
    if (!segments) {
      const { sid } = this.catalog.get(animeId)!;
      const sidJson = JSON.stringify(sid).slice(1, -1);
      const make = (id: string) => LEADS.flatMap((lead) => SENTIMENTS.map((s) => [lead, ' <anime_start>', id, '<anime_end> ', s].join('')));
      segments = { sid, text: make(sid), json: sidJson === sid ? undefined : make(sidJson) };
      this.byAnime.set(animeId, segments);
    }
    return segments;
  }
}

const segmentsOf = new WeakMap<ReadonlyMap<number, CatalogEntry>, Segments>();

/** Steps 5–6, made when the row is written. */
class TaskBRow implements DeferredRow {
  constructor(
    private readonly userId: number,
    private readonly mode: MaskMode,
    private readonly masked: number,
    private readonly sequence: Sequence,
    private readonly segments: Segments,
  ) {}

  render(): PrepRow {
    return this.renderWithJson('{')[0];
  }

  /**
   * The line is made in one join, and a plain input (no id needing JSON escapes, the usual case)
   * is a slice of it rather than a second copy: every byte made here outlives a few young-generation
   * collections and is copied again into the old one, so fewer bytes is less garbage collection.
   */
  renderWithJson(head: string): [PrepRow, string] {
    const { masked } = this;
    const { anime_ids, sentiments } = this.sequence;
    const output = this.segments.of(anime_ids[masked]!).sid;
    const meta = { template_id: 'watch_sequence_mask', mask_mode: this.mode, mask_index: masked, history_len: anime_ids.length };
    const opening = [head, '"task":"B","input":"'];
    const pieces = opening.slice();
    let text: string[] | undefined;
    let inputLength = anime_ids.length - 1;
    for (let i = 0; i < anime_ids.length; i++) {
      const lead = i === 0 ? 0 : 1;
      let plain: string;
      let json: string;
      if (i === masked) plain = json = MASKED[lead]!;
      else {
        const anime = this.segments.of(anime_ids[i]!);
        const at = lead * 4 + sentiments[i]!;
        plain = anime.text[at]!;
        json = anime.json?.[at] ?? plain;
      }
      // Once an id needed escaping, the plain input is kept apart from the JSON.
      if (json !== plain) text ??= pieces.slice(opening.length).filter((_, k) => k % 2 === 0);
      text?.push(plain);
      if (i > 0) pieces.push(' ');
      pieces.push(json);
      inputLength += plain.length;
    }
    pieces.push('","output":', JSON.stringify(output), ',"anime_ids":', JSON.stringify(anime_ids), ',"user_id":', JSON.stringify(this.userId), ',"meta":', JSON.stringify(meta), '}');
    const line = pieces.join('');
    const start = head.length + opening[1]!.length;
    const input = text ? text.join(' ') : line.slice(start, start + inputLength);
    return [{ task: 'B', input, output, anime_ids, user_id: this.userId, meta }, line];
  }
}

/** The Task B row of one masked history, deferred (see PoolItem); `sequence` may be shared with the user's other masks. */
export function taskBRow(history: MaskedHistory, catalog: ReadonlyMap<number, CatalogEntry>, positiveMin: number, sequence = sequenceOf(history.rows, positiveMin)): PoolItem {
  let segments = segmentsOf.get(catalog);
  if (!segments) segmentsOf.set(catalog, (segments = new Segments(catalog)));
  const { user_id, mask_mode, mask_index } = history;
  return { key: `B:${user_id}:${mask_mode}`, row: new TaskBRow(user_id, mask_mode, mask_index, sequence, segments) };
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
