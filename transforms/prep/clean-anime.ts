import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineTransform, port } from '../../engine/node.ts';
import { cleanList, cleanText, isSynopsisPlaceholder, yearFromColumn, yearFromText, type Cleaned } from './text.ts';
import type { AnimeInfo } from './types.ts';

type AnimeRow = Record<string, unknown>;

/** Placeholders removed per source field; the summary reports them. */
export type PlaceholderCounts = Record<string, number>;

export const CLEANED_FIELDS = [
  'name',
  'english_name',
  'genres',
  'studios',
  'synopsis',
  'premiered',
  'type',
  'source',
] as const;

/** One anime row cleaned per the spec; `counts` collects the placeholders thrown away. */
export function cleanAnime(row: AnimeRow, counts: PlaceholderCounts): AnimeInfo {
  const take = <T>(field: string, cleaned: Cleaned<T>): T => {
    if (cleaned.placeholders) counts[field] = (counts[field] ?? 0) + cleaned.placeholders;
    return cleaned.value;
  };
  const id = row.anime_id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id))
    throw new DataError(`table 'anime': anime_id must be an integer, got ${JSON.stringify(id)}`);
  const name = take('name', cleanText(row.name));
  const englishName = take('english_name', cleanText(row.english_name));
  const premiered = take('premiered', cleanText(row.premiered));
  return {
    anime_id: id,
    title: englishName ?? name,
    genres: take('genres', cleanList(row.genres)),
    studios: take('studios', cleanList(row.studios)),
    year: yearFromColumn(row.year) ?? yearFromText(premiered) ?? null,
    synopsis: take('synopsis', cleanText(row.synopsis, isSynopsisPlaceholder)),
    type: take('type', cleanText(row.type)),
    source: take('source', cleanText(row.source)),
  };
}

/** Turns raw `anime` rows into AnimeInfo, counting the placeholders removed per field. */
export default defineTransform({
  type: 'prep-clean-anime',
  kind: 'transform',
  description:
    'Cleans anime metadata rows: whitespace, placeholders (Unknown, N/A, …), lists, year from year/premiered.',
  options: z.strictObject({}),
  inputs: { in: port<AnimeRow>() },
  stats: z.object({ rows: z.number(), placeholders_removed: z.record(z.string(), z.number()) }),
  create(ctx, inputs) {
    const placeholders: PlaceholderCounts = Object.fromEntries(CLEANED_FIELDS.map((f) => [f, 0]));
    let rows = 0;
    ctx.stats.placeholders_removed = placeholders;
    return inputs.ports.in.map((batch) => {
      const out = new Array<AnimeInfo>(batch.length);
      for (let i = 0; i < batch.length; i++) out[i] = cleanAnime(batch[i]!, placeholders);
      rows += batch.length;
      ctx.stats.rows = rows;
      return out;
    });
  },
});
