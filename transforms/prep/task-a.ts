import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { intOption } from './options.ts';
import { atEnd } from './streams.ts';
import { jsonContent } from '../../engine/encoded-batch.ts';
import type { RowLines } from './row-lines.ts';
import { PooledRow, type AnimeInfo, type CatalogEntry, type PoolItem } from './types.ts';
import type { PrepRow, TaskRow } from './prep-row.ts';

/** What a Task A template may use of one anime; every field is already free of placeholders. */
interface Facts {
  sid: string;
  title: string | null;
  genres: string[];
  studios: string[];
  year: number | null;
  synopsis: string | null;
  /** These facts as a line holds them (see jsonFacts), made when the anime's first row is written. */
  json: Facts | null;
}

interface Template {
  id: string;
  /** Whether the anime has every field the template needs (the spec's `when`). */
  when(f: Facts): boolean;
  /** Input and output. */
  render(f: Facts): [string, string];
}

const list = (items: string[]) => items.join(', ');

/** The spec's Task A table, in its order. */
export const TASK_A_TEMPLATES: readonly Template[] = [
  { id: 'sid_to_title', when: (f) => f.title !== null, render: (f) => [`The anime ${f.sid} has the title`, f.title!] },
  {
    id: 'title_to_sid',
    when: (f) => f.title !== null,
    render: (f) => [`The anime titled '${f.title}' has semantic id`, f.sid],
  },
  {
    id: 'sid_to_genres',
    when: (f) => f.genres.length > 0,
    render: (f) => [`The anime ${f.sid} belongs to genres`, list(f.genres)],
  },
  {
    id: 'title_to_genres',
    when: (f) => f.title !== null && f.genres.length > 0,
    render: (f) => [`The anime titled '${f.title}' belongs to genres`, list(f.genres)],
  },
  {
    id: 'sid_to_studio',
    when: (f) => f.studios.length > 0,
    render: (f) => [`The anime ${f.sid} is produced by studio`, list(f.studios)],
  },
  {
    id: 'title_studio_to_sid',
    when: (f) => f.title !== null && f.studios.length > 0,
    render: (f) => [`The anime titled '${f.title}' by studio ${list(f.studios)} has semantic id`, f.sid],
  },
  {
    id: 'sid_to_year',
    when: (f) => f.year !== null,
    render: (f) => [`The anime ${f.sid} released in year`, String(f.year)],
  },
  {
    id: 'title_year_to_sid',
    when: (f) => f.title !== null && f.year !== null,
    render: (f) => [`The anime titled '${f.title}' released in ${f.year} has semantic id`, f.sid],
  },
  {
    id: 'sid_to_synopsis',
    when: (f) => f.synopsis !== null,
    render: (f) => [`The anime ${f.sid} synopsis:`, f.synopsis!],
  },
  {
    id: 'sid_to_themes',
    when: (f) => f.genres.length > 0,
    render: (f) => [`The anime ${f.sid} has notable themes`, list(f.genres.slice(0, 3))],
  },
];

/**
 * Facts as a JSON line holds them: every text as JSON string content. A template renders these
 * into its input and output exactly as JSON.stringify would write the rendered text: escaping
 * goes character by character (a surrogate pair as one), and templates join facts only with
 * ASCII, so no pair spans two pieces. The facts themselves when nothing needs escaping.
 */
function jsonFacts(facts: Facts): Facts {
  let { json } = facts;
  if (!json) {
    const { sid, title, genres, studios, year, synopsis } = facts;
    const escaped: Facts = {
      sid: jsonContent(sid),
      title: title === null ? null : jsonContent(title),
      genres: genres.map(jsonContent),
      studios: studios.map(jsonContent),
      year,
      synopsis: synopsis === null ? null : jsonContent(synopsis),
      json: null,
    };
    const same = (a: string[], b: string[]) => a.every((text, i) => text === b[i]);
    const plain =
      escaped.sid === sid &&
      escaped.title === title &&
      escaped.synopsis === synopsis &&
      same(escaped.genres, genres) &&
      same(escaped.studios, studios);
    json = facts.json = plain ? facts : escaped;
  }
  return json;
}

/** One anime's row of one template, deferred. */
class TaskARow extends PooledRow {
  constructor(
    private readonly animeId: number,
    readonly template: Template,
    private readonly facts: Facts,
  ) {
    super();
  }

  /**
   * The line is the template rendered with escaped facts: an anime's facts are escaped once for
   * all its rows, not each row's text again, and anime_ids and meta need no JSON.stringify.
   * Measured on the 1M bench database's 154k Task A rows: 260 ms, where rendering and then
   * serializing took 385 ms.
   */
  encode(out: RowLines, example_id: string): PrepRow {
    const { animeId, template, facts } = this;
    const json = jsonFacts(facts);
    const [inputJson, outputJson] = template.render(json);
    out.head(example_id);
    out.contentStart();
    out.ascii('"task":"A","input":"');
    out.text(inputJson);
    out.ascii('","output":"');
    out.text(outputJson);
    out.byte(34);
    out.contentEnd();
    out.ascii(`,"anime_ids":[${animeId}],"user_id":null,"meta":{"template_id":"${template.id}"}}`);
    out.endLine();
    const [input, output] = json === facts ? [inputJson, outputJson] : template.render(facts);
    return this.example(example_id, input, output);
  }

  get key(): string {
    return `A:${this.animeId}:${this.template.id}`;
  }

  render(): TaskRow {
    const { example_id: _, ...row } = this.example('', ...this.template.render(this.facts));
    return row;
  }

  private example(example_id: string, input: string, output: string): PrepRow {
    return {
      example_id,
      task: 'A',
      input,
      output,
      anime_ids: [this.animeId],
      user_id: null,
      meta: { template_id: this.template.id },
    };
  }
}

/**
 * The Task A rows of one anime: the applicable templates in table order, at most `max` of them,
 * deferred (see PoolItem) since the pool is held until sampling ends.
 */
export function taskARows(entry: CatalogEntry & { info: AnimeInfo }, max: number): TaskARow[] {
  const { info } = entry;
  const facts: Facts = {
    sid: entry.sid,
    title: info.title,
    genres: entry.genres,
    studios: info.studios,
    year: info.year,
    synopsis: info.synopsis,
    json: null,
  };
  const out: TaskARow[] = [];
  for (const template of TASK_A_TEMPLATES) {
    if (out.length >= max) break;
    if (template.when(facts)) out.push(new TaskARow(entry.anime_id, template, facts));
  }
  return out;
}

/** Task A pool: the template rows of every anime that has both a semantic id and a metadata row. */
export const taskAStats = z.object({
  pool: z.number(),
  anime: z.number(),
  without_title: z.number(),
  templates: z.record(z.string(), z.number()),
});

export default defineTransform({
  type: 'prep-task-a',
  kind: 'transform',
  description:
    'Builds the Task A pool: title/genre/studio/year/synopsis templates per anime with a semantic id and metadata.',
  options: z.strictObject({
    max_task_a_templates_per_anime: intOption('keep only the first N applicable templates per anime').default(12),
  }),
  inputs: { in: port<CatalogEntry>() },
  stats: taskAStats,
  create(ctx, inputs) {
    const max = ctx.options.max_task_a_templates_per_anime;
    const templates: Record<string, number> = Object.fromEntries(TASK_A_TEMPLATES.map((t) => [t.id, 0]));
    let pool = 0;
    let anime = 0;
    let withoutTitle = 0;
    Object.assign(ctx.stats, { pool, anime, without_title: withoutTitle, templates });
    const rows = inputs.ports.in.map((batch) => {
      const out: PoolItem[] = [];
      for (const entry of batch) {
        if (!entry.info) continue;
        anime++;
        if (entry.info.title === null) withoutTitle++;
        for (const item of taskARows(entry as CatalogEntry & { info: AnimeInfo }, max)) {
          templates[item.template.id]!++;
          out.push(item);
        }
      }
      pool += out.length;
      Object.assign(ctx.stats, { pool, anime, without_title: withoutTitle });
      return out;
    });
    return atEnd(rows, () =>
      ctx.progress.log(`Task A pool: ${pool.toLocaleString('en-US')} rows from ${anime.toLocaleString('en-US')} anime`),
    );
  },
});
