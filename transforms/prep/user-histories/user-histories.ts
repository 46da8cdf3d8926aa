import { statSync } from 'node:fs';
import os from 'node:os';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import { defineTransform, port } from '../../../engine/node.ts';
import { inputPath } from '../../../engine/options.ts';
import type { Counter } from '../../../engine/progress.ts';
import { collectRows, fromAsync } from '../../../engine/stream.ts';
import { schemaProblems } from '../../../sources/sqlite-schema.ts';
import { extensionMissing, rangeIndexMissing } from './history-query.ts';
import { unpackEntry, type ChunkResult } from './scan-chunk.ts';
import { HistoryScan } from './scan-pool.ts';
import { historyLine, historyOptions, historyStats, withHistoryBounds } from '../history.ts';
import { intOption } from '../options.ts';
import type { CatalogEntry, HistoryRow, UserHistory } from '../types.ts';

const COLUMNS = ['user_id', 'anime_id', 'score', 'watching_status', 'watched_episodes', 'scraped_at'];

/**
 * Database bytes per user-id range when `ranges` is not set. A read's rows are in memory at once
 * (in its worker, then as one batch through the Task B/C nodes), so a fixed count of ranges made
 * memory grow with the table: at 100M rows, 256 ranges of ~1,250 users peaked at 497 MB and 2,048
 * at 452 MB. Small ranges cost time instead: at 10M rows, 2,048 ranges of ~16 users ran slower
 * than 256 in both pairs measured, by 0.5-0.9 s.
 */
const RANGE_BYTES = 4 << 20;
const MIN_RANGES = 256;

/**
 * `workers: auto` takes one worker per core up to this. Measured on two cores at 10M rows: one
 * worker 6.6-7.3 s, two 5.8-6.1 s. More cores were not measured, so `auto` stops at what was; on a
 * larger machine a user sets the number (prep.yaml's `scan_workers`).
 */
const AUTO_WORKERS_MAX = 2;

/**
 * users_per_read's default. The default ranges hold ~125-175 users at 312 rows a user, so this
 * only splits ranges whose ids are bunched: a 10M-row database with one stray user id of 2^40
 * (every other user then in the first range) peaked at 354 MB where 276 MB without it.
 */
const USERS_PER_READ = 512;

/**
 * The scan's worker threads: `auto` as above; a number above the machine's cores is cut to them,
 * with a warning, since threads beyond the cores only take turns on them (the output is the same
 * for any number, so a setting made on a larger machine still runs).
 */
export function scanWorkers(asked: number | 'auto', cores: number, warn: (message: string) => void): number {
  if (asked === 'auto') return Math.min(AUTO_WORKERS_MAX, cores);
  if (asked <= cores) return asked;
  warn(
    `workers ${asked} is more than this machine's ${cores} cores: scanning with ${cores} ` +
      `(more threads than cores only slow the scan; the output is the same)`,
  );
  return cores;
}

const defaultRanges = (database: string) => Math.max(MIN_RANGES, Math.ceil(statSync(database).size / RANGE_BYTES));

/** A range's users as prep-history emits them: users left with no rows are not passed on. */
function histories(chunk: ChunkResult): UserHistory[] {
  const exact = new Map(chunk.exact.map((user) => [user.index, user.rows]));
  const out: UserHistory[] = [];
  for (let i = 0; i < chunk.users; i++) {
    let rows = exact.get(i);
    if (!rows) {
      rows = new Array<HistoryRow>(chunk.offsets[i + 1]! - chunk.offsets[i]!);
      for (let j = 0; j < rows.length; j++) rows[j] = unpackEntry(chunk.entries[chunk.offsets[i]! + j]!);
    }
    if (rows.length) out.push({ user_id: chunk.userIds[i]!, eligible: chunk.eligible[i] === 1, rows });
  }
  return out;
}

/**
 * The user pass of prep.yaml in one node: what `sqlite-source` (user_anime) → `prep-group-users`
 * → `prep-history` produce, byte for byte, read grouped by user inside SQLite and split into
 * user-id ranges across worker threads (transforms/prep/user-histories/). The three generic nodes stay
 * the readable reference; test/prep/user-histories.test.ts holds the two to the same output.
 */
export default defineTransform({
  type: 'prep-user-histories',
  kind: 'transform',
  description:
    'Reads user_anime grouped by user inside SQLite, on worker ' +
    'threads, and emits what prep-history emits (Task B steps 1-3).',
  options: withHistoryBounds(
    z.strictObject({
      database: inputPath('SQLite database with the user_anime table (opened read-only)'),
      ...historyOptions,
      workers: z
        .union([z.literal('auto'), z.int().min(0)], { error: "expected a whole number of threads, or 'auto'" })
        .default('auto')
        .describe(
          `worker threads scanning user-id ranges; auto: one per core, at most ` +
            `${AUTO_WORKERS_MAX}; more than the cores are cut to them, with a warning; 0 scans on the main ` +
            `thread (same output whatever the number)`,
        ),
      ranges: intOption(
        `user-id ranges the scan is split into; default one per ${RANGE_BYTES >> 20} MB of database, at least ` +
          `${MIN_RANGES}: more balance the workers better and hold fewer rows at once (same output either way)`,
        1,
      ).optional(),
      users_per_read: intOption(
        'most users a range is read in at once, so user ids bunched into ' +
          'few ranges hold no more memory than others (same output either way)',
        1,
      ).default(USERS_PER_READ),
    }),
  ),
  inputs: { catalog: port<CatalogEntry>({ side: true }) },
  stats: historyStats.extend({ rows: z.number() }),
  check: (o) => {
    const missing = extensionMissing();
    const unindexed = (db: Database.Database) => {
      const message = rangeIndexMissing(db);
      return message ? [{ option: 'database', message }] : [];
    };
    return [
      ...(missing ? [{ option: 'type', message: missing }] : []),
      ...schemaProblems(o.database, 'user_anime', COLUMNS, 'table', unindexed),
    ];
  },
  create(ctx, inputs) {
    const o = ctx.options;
    const workers = scanWorkers(o.workers, os.availableParallelism(), (message) => ctx.progress.warn(message));
    const scan = new HistoryScan(o.database, workers, o.users_per_read);
    ctx.onClose(() => scan.close());
    const counter = ctx.progress.counter('users', { unit: 'users', logEvery: 25000 });
    const totals = {
      rows: 0,
      users: 0,
      status_filtered_rows: 0,
      unknown_anime_rows: 0,
      short_history_users: 0,
      eligible_users: 0,
    };
    Object.assign(ctx.stats, totals);
    async function* read(): AsyncGenerator<UserHistory[]> {
      const knownIds = (await collectRows(inputs.ports.catalog)).map((entry) => entry.anime_id);
      const request = {
        allowedStatuses: o.task_b_allowed_statuses,
        min: o.task_b_min_history,
        max: o.task_b_max_history,
        knownIds,
      };
      // The user count is not known until the end, so the bar with an ETA counts ranges, equal spans of user ids.
      let ranges: Counter | undefined;
      const split = (count: number) =>
        (ranges = ctx.progress.counter('user-id ranges', { unit: 'ranges', total: count, logEvery: Infinity }));
      for await (const chunk of scan.chunks(request, o.ranges ?? defaultRanges(o.database), split)) {
        for (const key of ['rows', 'users', 'status_filtered_rows', 'unknown_anime_rows', 'eligible_users'] as const)
          totals[key] += chunk.counts[key];
        totals.short_history_users = totals.users - totals.eligible_users;
        Object.assign(ctx.stats, totals);
        counter.add(chunk.users);
        if (chunk.endsRange) ranges!.add(1);
        const batch = histories(chunk);
        if (batch.length) yield batch;
      }
      counter.done();
      ranges?.done();
      ctx.progress.log(
        `Scanned ${totals.rows.toLocaleString('en-US')} user_anime ` +
          `rows from ${totals.users.toLocaleString('en-US')} users`,
      );
      ctx.progress.log(historyLine(totals.eligible_users, totals.short_history_users, totals.unknown_anime_rows));
    }
    return fromAsync(read(), ctx.onClose);
  },
});
