import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, DataError } from '../engine/errors.ts';
import { defineSink, type Stats } from '../engine/node.ts';
import { outputPath } from '../engine/options.ts';
import { DistinctRows } from './distinct-rows.ts';
import type { Stream } from '../engine/stream.ts';
import { TASK_A_TEMPLATES } from '../transforms/prep/task-a.ts';
import type { PrepExample } from '../transforms/prep/types.ts';

/** Which node of the pipeline reports each group of counters; the defaults are prep.yaml's ids. */
const statsFrom = z
  .strictObject({
    semantic_ids: z.string().default('semantic_ids'),
    anime: z.string().default('anime'),
    clean_anime: z.string().default('clean_anime'),
    catalog: z.string().default('catalog'),
    task_a: z.string().default('task_a'),
    user_anime: z.string().default('history'),
    users: z.string().default('history'),
    history: z.string().default('history'),
    seeds: z.string().default('seeds'),
    task_b: z.string().default('task_b'),
    task_c: z.string().default('task_c'),
    sample: z.string().default('sample'),
  })
  .prefault({})
  .describe('node ids whose stats the summary reads, by role (defaults match pipelines/prep.yaml)');

const TEMPLATE_IDS = [...TASK_A_TEMPLATES.map((t) => t.id), 'watch_sequence_mask', 'reasoning_single', 'reasoning_triple'];

const seconds = (ms: number) => Number((ms / 1000).toFixed(3));

const isoTime = z.iso.datetime({ offset: true });

/** The time the summary reports: `pin_time` or ANIMIND_FIXED_TIME pin it (durations then read 0) for byte-stable goldens. */
function clock(pin: string) {
  const pinned = pin || process.env.ANIMIND_FIXED_TIME || '';
  if (pinned && !isoTime.safeParse(pinned).success)
    throw new ConfigError(`ANIMIND_FIXED_TIME '${pinned}': expected an ISO 8601 time such as 2026-01-01T00:00:00Z`);
  return { pinned: Boolean(pinned), now: () => (pinned ? Date.parse(pinned) : Date.now()) };
}

/** Writes llm_prep_summary.json: what was read, dropped, pooled, sampled and written, from every prep node's stats. */
export default defineSink({
  type: 'prep-summary-sink',
  kind: 'sink',
  description: 'Writes the prep summary JSON (counts, quotas, pools, placeholders removed, oversampling, distinct share, timings).',
  options: z.strictObject({
    path: outputPath('summary JSON file (llm_prep_summary.json)'),
    pin_time: z
      .union([z.literal(''), isoTime])
      .default('')
      .describe('ISO time written as generated_at, durations then 0, for reproducible files (env ANIMIND_FIXED_TIME does the same)'),
    stats_from: statsFrom,
  }),
  inputs: { ports: ['in'] },
  async create(ctx, inputs) {
    const time = clock(ctx.options.pin_time);
    const started = time.now();
    let firstRowAt: number | undefined;
    const target = ctx.output(ctx.options.path);
    const counts = { A: 0, B: 0, C: 0, total: 0 };
    const templates: Record<string, number> = Object.fromEntries(TEMPLATE_IDS.map((id) => [id, 0]));
    const distinct = new DistinctRows();
    ctx.onClose(() => distinct.close());
    await (inputs.ports.in! as Stream<PrepExample[]>)
      .reduce(0, (n: number, batch: PrepExample[]) => {
        firstRowAt ??= time.now();
        for (const row of batch) {
          counts[row.task]++;
          templates[row.meta.template_id as string] = (templates[row.meta.template_id as string] ?? 0) + 1;
        }
        distinct.add(batch);
        return n + batch.length;
      })
      .toPromise(Promise);
    counts.total = counts.A + counts.B + counts.C;
    const stats = (role: keyof typeof ctx.options.stats_from): Stats => {
      const id = ctx.options.stats_from[role];
      const found = ctx.allStats[id];
      if (!found) throw new DataError(`stats_from.${role}: no node '${id}' in this pipeline`);
      return found;
    };
    const sample = stats('sample');
    const taskA = stats('task_a');
    const history = stats('history');
    const catalog = stats('catalog');
    const finished = time.now();
    const summary = {
      seed: ctx.pipeline.seed,
      target_examples: sample.target_examples,
      splits: sample.splits,
      quotas: sample.quotas,
      counts,
      pools: { A: taskA.pool, B: stats('task_b').pool, C_seeds: stats('seeds').seeds, C: stats('task_c').pool },
      oversampling_factor: sample.oversampling_factor,
      template_counts: templates,
      inputs: {
        semantic_id_rows: stats('semantic_ids').rows,
        anime_rows: stats('anime').rows,
        anime_with_semantic_id_and_metadata: catalog.with_metadata,
        semantic_ids_without_metadata: catalog.without_metadata,
        metadata_without_semantic_id: catalog.metadata_without_sid,
      },
      users: {
        user_anime_rows_scanned: stats('user_anime').rows,
        users_scanned: stats('users').users,
        rows_with_other_status: history.status_filtered_rows,
        unknown_anime_rows_dropped: history.unknown_anime_rows,
        short_history_users: history.short_history_users,
        task_b_users: history.eligible_users,
        users_with_task_c_seed: stats('seeds').users_with_seed,
      },
      cleaning: {
        placeholders_removed: stats('clean_anime').placeholders_removed,
        anime_without_title: taskA.without_title,
      },
      distinct_row_share: counts.total ? Number(((await distinct.count()) / counts.total).toFixed(6)) : 0,
      timings: {
        generated_at: new Date(finished).toISOString(),
        pools_seconds: time.pinned ? 0 : seconds((firstRowAt ?? finished) - started),
        total_seconds: time.pinned ? 0 : seconds(finished - started),
      },
    };
    writeFileSync(target, JSON.stringify(summary, null, 2) + '\n');
    ctx.stats.written = 1;
  },
});
