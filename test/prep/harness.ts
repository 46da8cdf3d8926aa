import type { NodeDefinition } from '../../engine/node.ts';
import { runTransform } from '../../engine/run-node.ts';
import type { AnimeInfo, CatalogEntry, WatchRow } from '../../transforms/prep/types.ts';

/** Splits rows into batches of `size`, the way a source with that batch_size would hand them over. */
export function rebatch<T>(rows: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** Runs one transform node on in-memory batches per port, in a real run of the engine. */
export const runNode = <T = unknown>(
  def: NodeDefinition,
  options: Record<string, unknown>,
  ports: Record<string, unknown[][]>,
  run: { id?: string; seed?: number; batchSize?: number } = {},
) => runTransform<T>(def, options, ports, run);

export function info(anime_id: number, fields: Partial<AnimeInfo> = {}): AnimeInfo {
  return {
    anime_id,
    title: null,
    genres: [],
    studios: [],
    year: null,
    synopsis: null,
    type: null,
    source: null,
    ...fields,
  };
}

/** A catalog entry whose semantic id is `<S{id}>`, so expected strings stay readable. */
export function entry(anime_id: number, fields: Partial<AnimeInfo> | null = {}): CatalogEntry {
  const meta = fields === null ? null : info(anime_id, fields);
  return { anime_id, sid: `<S${anime_id}>`, genres: meta?.genres ?? [], info: meta };
}

export function catalogOf(...entries: CatalogEntry[]): Map<number, CatalogEntry> {
  return new Map(entries.map((e) => [e.anime_id, e]));
}

export function watch(user_id: number, anime_id: number, fields: Partial<WatchRow> = {}): WatchRow {
  return { user_id, anime_id, score: 0, watching_status: 2, watched_episodes: 0, scraped_at: '2024-01-01', ...fields };
}
