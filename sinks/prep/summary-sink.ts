import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../engine/errors.ts';
import { defineSink, port, rowStats, type NodeContext } from '../../engine/node.ts';
import type { Stream } from '../../engine/stream.ts';
import { outputPath } from '../../engine/options.ts';
import { DistinctRows } from './distinct-rows.ts';
import { catalogStats } from '../../transforms/prep/catalog.ts';
import { heldOutStats } from '../../transforms/prep/held-out.ts';
import { historyStats } from '../../transforms/prep/history.ts';
import { auditStats } from '../../transforms/prep/leakage-audit.ts';
import { sampleStats } from '../../transforms/prep/sample.ts';
import { TASK_A_TEMPLATES, taskAStats } from '../../transforms/prep/task-a.ts';
import { poolStats } from '../../transforms/prep/task-b.ts';
import type { PrepRow } from '../../transforms/prep/prep-row.ts';

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
    valid: z.string().default('valid_examples'),
    test: z.string().default('test_examples'),
    task_b_train: z.string().default('task_b_train'),
    task_c_train: z.string().default('task_c_train'),
    audit: z.string().default('audit'),
  })
  .prefault({})
  .describe('node ids whose stats the summary reads, by role (defaults match pipelines/prep.yaml)');

const TEMPLATE_IDS = [
  ...TASK_A_TEMPLATES.map((t) => t.id),
  'watch_sequence_mask',
  'reasoning_single',
  'reasoning_triple',
];

const seconds = (ms: number) => Number((ms / 1000).toFixed(3));

const isoTime = z.iso.datetime({ offset: true });

/**
 * The time the summary reports: `pin_time` or ANIMIND_FIXED_TIME
 * pin it (durations then read 0) for byte-stable goldens.
 */
function clock(pin: string) {
  const pinned = pin || process.env.ANIMIND_FIXED_TIME || '';
  if (pinned && !isoTime.safeParse(pinned).success)
    throw new ConfigError(`ANIMIND_FIXED_TIME '${pinned}': expected an ISO 8601 time such as 2026-01-01T00:00:00Z`);
  return { pinned: Boolean(pinned), now: () => (pinned ? Date.parse(pinned) : Date.now()) };
}

const options = z.strictObject({
  path: outputPath('summary JSON file (llm_prep_summary.json)'),
  pin_time: z
    .union([z.literal(''), isoTime])
    .default('')
    .describe(
      'ISO time written as generated_at, durations then 0, for ' +
        'reproducible files (env ANIMIND_FIXED_TIME does the same)',
    ),
  stats_from: statsFrom,
});

const summaryStats = z.object({ written: z.number() });

/** Writes llm_prep_summary.json: what was read, dropped, pooled, sampled and written, from every prep node's stats. */
export default defineSink({
  type: 'prep-summary-sink',
  kind: 'sink',
  description:
    'Writes the prep summary JSON (counts, quotas, pools, ' +
    'placeholders removed, oversampling, distinct share, timings).',
  options,
  inputs: { in: port<PrepRow>() },
  stats: summaryStats,
  async create(ctx, inputs) {
    // Handles first, so a wrong id is found before the rows are read; each is read once its node is done.
    const stats = statsHandles(ctx);
    const time = clock(ctx.options.pin_time);
    const started = time.now();
    const target = ctx.output(ctx.options.path);
    const distinct = new DistinctRows();
    ctx.onClose(() => distinct.close());
    const rows = await countRows(inputs.ports.in, distinct, time.now);
    const finished = time.now();
    const share = rows.counts.total ? Number(((await distinct.count()) / rows.counts.total).toFixed(6)) : 0;
    const timings = {
      generated_at: new Date(finished).toISOString(),
      pools_seconds: time.pinned ? 0 : seconds((rows.firstRowAt ?? finished) - started),
      total_seconds: time.pinned ? 0 : seconds(finished - started),
    };
    writeFileSync(target, JSON.stringify(summaryJson(ctx.pipeline.seed, stats, rows, share, timings), null, 2) + '\n');
    ctx.stats.written = 1;
  },
});

type Context = NodeContext<z.output<typeof options>, typeof summaryStats>;

/** The stats the summary reports, by role, each read through the schema of the node that reports it. */
function statsHandles(ctx: Context) {
  const from = ctx.options.stats_from;
  return {
    semanticIds: ctx.statsOf(from.semantic_ids, rowStats),
    anime: ctx.statsOf(from.anime, rowStats),
    cleanAnime: ctx.statsOf(from.clean_anime, z.object({ placeholders_removed: z.record(z.string(), z.number()) })),
    catalog: ctx.statsOf(from.catalog, catalogStats),
    taskA: ctx.statsOf(from.task_a, taskAStats),
    userAnime: ctx.statsOf(from.user_anime, rowStats),
    users: ctx.statsOf(from.users, z.object({ users: z.number() })),
    history: ctx.statsOf(from.history, historyStats),
    seeds: ctx.statsOf(from.seeds, z.object({ seeds: z.number(), users_with_seed: z.number() })),
    taskB: ctx.statsOf(from.task_b, poolStats),
    taskC: ctx.statsOf(from.task_c, poolStats),
    sample: ctx.statsOf(from.sample, sampleStats),
    valid: ctx.statsOf(from.valid, heldOutStats),
    test: ctx.statsOf(from.test, heldOutStats),
    taskBTrain: ctx.statsOf(from.task_b_train, droppedStats),
    taskCTrain: ctx.statsOf(from.task_c_train, droppedStats),
    audit: ctx.statsOf(from.audit, auditStats),
  };
}

const droppedStats = z.object({ dropped: z.number() });

interface RowCounts {
  counts: Record<'A' | 'B' | 'C' | 'total', number>;
  templates: Record<string, number>;
  firstRowAt: number | undefined;
}

/** Counts the rows by task and template, handing each batch to the distinct-row counter. */
async function countRows(input: Stream<PrepRow[]>, distinct: DistinctRows, now: () => number): Promise<RowCounts> {
  const rows: RowCounts = {
    counts: { A: 0, B: 0, C: 0, total: 0 },
    templates: Object.fromEntries(TEMPLATE_IDS.map((id) => [id, 0])),
    firstRowAt: undefined,
  };
  await input
    .reduce(0, (n: number, batch: PrepRow[]) => {
      rows.firstRowAt ??= now();
      for (const row of batch) {
        rows.counts[row.task]++;
        const template = row.meta.template_id as string;
        rows.templates[template] = (rows.templates[template] ?? 0) + 1;
      }
      distinct.add(batch);
      return n + batch.length;
    })
    .toPromise(Promise);
  rows.counts.total = rows.counts.A + rows.counts.B + rows.counts.C;
  return rows;
}

/** A per-task record under the original tool's key names (`task_a`…), which its tests read beside A/B/C. */
const originalTaskKeys = (perTask: Record<'A' | 'B' | 'C', number>) => ({
  task_a: perTask.A,
  task_b: perTask.B,
  task_c: perTask.C,
});

/**
 * llm_prep_summary.json, field by field (the order is the file's). The original tool's keys stand
 * beside this tool's own (docs/prep.md lists both): `generated_at`, `task_a`… in `quotas` and
 * `counts`, `pool_sizes`, `semantic_rows` and `anime_meta_rows`.
 */
function summaryJson(
  seed: number,
  stats: ReturnType<typeof statsHandles>,
  { counts, templates }: RowCounts,
  distinctShare: number,
  timings: { generated_at: string } & Record<string, unknown>,
) {
  const sample = stats.sample.read();
  const taskA = stats.taskA.read();
  const history = stats.history.read();
  const catalog = stats.catalog.read();
  const seeds = stats.seeds.read();
  const pools = { A: taskA.pool, B: stats.taskB.read().pool, C_seeds: seeds.seeds, C: stats.taskC.read().pool };
  const semanticIdRows = stats.semanticIds.read().rows;
  return {
    generated_at: timings.generated_at,
    seed,
    target_examples: sample.target_examples,
    splits: sample.splits,
    quotas: { ...sample.quotas, ...originalTaskKeys(sample.quotas) },
    counts: { ...counts, ...originalTaskKeys(counts) },
    pools,
    pool_sizes: {
      task_a_pool: pools.A,
      task_b_pool: pools.B,
      task_c_pool: pools.C,
      task_c_seed_pool: pools.C_seeds,
    },
    oversampling_factor: sample.oversampling_factor,
    template_counts: templates,
    inputs: {
      semantic_id_rows: semanticIdRows,
      anime_rows: stats.anime.read().rows,
      anime_with_semantic_id_and_metadata: catalog.with_metadata,
      semantic_ids_without_metadata: catalog.without_metadata,
      metadata_without_semantic_id: catalog.metadata_without_sid,
    },
    // The original tool's names: its semantic map, and the anime rows it kept (those with a semantic ID).
    semantic_rows: semanticIdRows,
    anime_meta_rows: catalog.with_metadata,
    users: {
      user_anime_rows_scanned: stats.userAnime.read().rows,
      users_scanned: stats.users.read().users,
      rows_with_other_status: history.status_filtered_rows,
      unknown_anime_rows_dropped: history.unknown_anime_rows,
      short_history_users: history.short_history_users,
      task_b_users: history.eligible_users,
      users_with_task_c_seed: seeds.users_with_seed,
    },
    ...holdoutJson(stats),
    cleaning: {
      placeholders_removed: stats.cleanAnime.read().placeholders_removed,
      anime_without_title: taskA.without_title,
    },
    distinct_row_share: distinctShare,
    timings,
  };
}

/**
 * `holdout` and `leakage_audit`, or nothing when no user is held out (both shares 0), so such a
 * run's summary is byte for byte what it was before users could be held out.
 */
function holdoutJson(stats: ReturnType<typeof statsHandles>) {
  const valid = stats.valid.read();
  const test = stats.test.read();
  if (valid.holdout_valid + valid.holdout_test === 0) return {};
  const audit = stats.audit.read();
  return {
    holdout: {
      fractions: { valid: valid.holdout_valid, test: valid.holdout_test },
      users: { valid: valid.users, test: test.users },
      examples: { valid: valid.examples, test: test.examples },
      users_without_example: { valid: valid.short_users, test: test.short_users },
      dropped_rows: { B: stats.taskBTrain.read().dropped, C: stats.taskCTrain.read().dropped },
      repeated_pairs_set_aside: stats.sample.read().held_out_pair_repeats,
    },
    leakage_audit: {
      held_out_users: valid.users + test.users,
      training_rows: audit.rows,
      rows_with_held_out_user: audit.rows_with_held_out_user,
      rows_with_held_out_pair: audit.rows_with_held_out_pair,
      total: audit.total,
    },
  };
}
