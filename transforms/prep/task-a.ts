import { z } from 'zod';
import { defineTransform } from '../../engine/node.ts';
import type { Stream } from '../../engine/stream.ts';
import { intOption } from './options.ts';
import { atEnd } from './streams.ts';
import type { AnimeInfo, CatalogEntry, PoolItem } from './types.ts';

/** What a Task A template may use of one anime; every field is already free of placeholders. */
interface Facts {
  sid: string;
  title: string | null;
  genres: string[];
  studios: string[];
  year: number | null;
  synopsis: string | null;
}

interface Template {
  id: string;
  /** Input and output, or undefined when the anime lacks a field the template needs (its `when`). */
  render(f: Facts): [string, string] | undefined;
}

const list = (items: string[]) => items.join(', ');

/** The spec's Task A table, in its order. */
export const TASK_A_TEMPLATES: readonly Template[] = [
  { id: 'sid_to_title', render: (f) => (f.title ? [`The anime ${f.sid} has the title`, f.title] : undefined) },
  { id: 'title_to_sid', render: (f) => (f.title ? [`The anime titled '${f.title}' has semantic id`, f.sid] : undefined) },
  { id: 'sid_to_genres', render: (f) => (f.genres.length ? [`The anime ${f.sid} belongs to genres`, list(f.genres)] : undefined) },
  {
    id: 'title_to_genres',
    render: (f) => (f.title && f.genres.length ? [`The anime titled '${f.title}' belongs to genres`, list(f.genres)] : undefined),
  },
  { id: 'sid_to_studio', render: (f) => (f.studios.length ? [`The anime ${f.sid} is produced by studio`, list(f.studios)] : undefined) },
  {
    id: 'title_studio_to_sid',
    render: (f) =>
      f.title && f.studios.length ? [`The anime titled '${f.title}' by studio ${list(f.studios)} has semantic id`, f.sid] : undefined,
  },
  { id: 'sid_to_year', render: (f) => (f.year !== null ? [`The anime ${f.sid} released in year`, String(f.year)] : undefined) },
  {
    id: 'title_year_to_sid',
    render: (f) => (f.title && f.year !== null ? [`The anime titled '${f.title}' released in ${f.year} has semantic id`, f.sid] : undefined),
  },
  { id: 'sid_to_synopsis', render: (f) => (f.synopsis ? [`The anime ${f.sid} synopsis:`, f.synopsis] : undefined) },
  { id: 'sid_to_themes', render: (f) => (f.genres.length ? [`The anime ${f.sid} has notable themes`, list(f.genres.slice(0, 3))] : undefined) },
];

/** The Task A rows of one anime: the applicable templates in table order, at most `max` of them. */
export function taskARows(entry: CatalogEntry & { info: AnimeInfo }, max: number): PoolItem[] {
  const { info } = entry;
  const facts: Facts = { sid: entry.sid, title: info.title, genres: entry.genres, studios: info.studios, year: info.year, synopsis: info.synopsis };
  const out: PoolItem[] = [];
  for (const template of TASK_A_TEMPLATES) {
    if (out.length >= max) break;
    const rendered = template.render(facts);
    if (!rendered) continue;
    out.push({
      key: `A:${entry.anime_id}:${template.id}`,
      row: { task: 'A', input: rendered[0], output: rendered[1], anime_ids: [entry.anime_id], user_id: null, meta: { template_id: template.id } },
    });
  }
  return out;
}

/** Task A pool: the template rows of every anime that has both a semantic id and a metadata row. */
export default defineTransform({
  type: 'prep-task-a',
  kind: 'transform',
  description: 'Builds the Task A pool: title/genre/studio/year/synopsis templates per anime with a semantic id and metadata.',
  options: z.strictObject({
    max_task_a_templates_per_anime: intOption('keep only the first N applicable templates per anime').default(12),
  }),
  inputs: { ports: ['in'] },
  create(ctx, inputs) {
    const max = ctx.options.max_task_a_templates_per_anime;
    const templates: Record<string, number> = Object.fromEntries(TASK_A_TEMPLATES.map((t) => [t.id, 0]));
    let pool = 0;
    let anime = 0;
    let withoutTitle = 0;
    Object.assign(ctx.stats, { pool, anime, without_title: withoutTitle, templates });
    const rows = (inputs.ports.in! as Stream<CatalogEntry[]>).map((batch) => {
      const out: PoolItem[] = [];
      for (const entry of batch) {
        if (!entry.info) continue;
        anime++;
        if (entry.info.title === null) withoutTitle++;
        for (const item of taskARows(entry as CatalogEntry & { info: AnimeInfo }, max)) {
          templates[item.row.meta.template_id as string]!++;
          out.push(item);
        }
      }
      pool += out.length;
      Object.assign(ctx.stats, { pool, anime, without_title: withoutTitle });
      return out;
    });
    return atEnd(rows, () => ctx.progress.log(`Task A pool: ${pool.toLocaleString('en-US')} rows from ${anime.toLocaleString('en-US')} anime`));
  },
});
