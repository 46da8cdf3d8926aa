import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import type { SemanticIdRow } from '../../sources/prep/semantic-ids-source.ts';
import { cleanList } from './text.ts';
import { atEnd } from './streams.ts';
import type { AnimeInfo, CatalogEntry } from './types.ts';
import { _, collectRows } from '../../engine/stream.ts';

/** The catalog entry of one semantic-id row; genres fall back to the semantic-id row's own. */
export function catalogEntry(sid: SemanticIdRow, info: AnimeInfo | undefined): CatalogEntry {
  const genres = info && info.genres.length ? info.genres : cleanList(sid.genres).value;
  return { anime_id: sid.anime_id, sid: sid.semantic_id, genres, info: info ?? null };
}

/**
 * Every anime with a semantic id, with its cleaned metadata when the database has a row for it.
 * Both inputs are small (one row per anime); the metadata is held as a Map.
 */
export const catalogStats = z.object({
  entries: z.number(),
  with_metadata: z.number(),
  without_metadata: z.number(),
  metadata_without_sid: z.number(),
});

export default defineTransform({
  type: 'prep-catalog',
  kind: 'transform',
  description:
    'Joins semantic-id rows with cleaned anime metadata into one catalog entry per anime with a semantic id.',
  options: z.strictObject({}),
  inputs: { semantic_ids: port<SemanticIdRow>(), anime: port<AnimeInfo>({ side: true }) },
  stats: catalogStats,
  create(ctx, inputs) {
    const metadata = collectRows(inputs.ports.anime).then((rows) => new Map(rows.map((r) => [r.anime_id, r])));
    let entries = 0;
    let withMetadata = 0;
    return _(metadata).flatMap((lookup) =>
      atEnd(
        inputs.ports.semantic_ids.map((batch) => {
          const out = new Array<CatalogEntry>(batch.length);
          for (let i = 0; i < batch.length; i++) {
            const info = lookup.get(batch[i]!.anime_id);
            if (info) withMetadata++;
            out[i] = catalogEntry(batch[i]!, info);
          }
          entries += batch.length;
          Object.assign(ctx.stats, {
            entries,
            with_metadata: withMetadata,
            without_metadata: entries - withMetadata,
            metadata_without_sid: lookup.size - withMetadata,
          });
          return out;
        }),
        () =>
          ctx.progress.log(
            `Loaded anime metadata rows: ${lookup.size.toLocaleString('en-US')}; ` +
              `with a semantic id: ${withMetadata.toLocaleString('en-US')}`,
          ),
      ),
    );
  },
});
