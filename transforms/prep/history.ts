import { z } from 'zod';
import { defineTransform } from '../../engine/node.ts';
import { intListOption, intOption } from './options.ts';
import { atEnd, withCatalog } from './streams.ts';
import type { CatalogEntry, UserHistory, UserRecord, WatchRow } from './types.ts';

const ascending = (a: unknown, b: unknown) => (a === b ? 0 : (a ?? '') < (b ?? '') ? -1 : 1);

/** Spec Task B step 3: scraped_at asc, watching_status asc, score desc, watched_episodes desc, anime_id asc. */
export function compareWatches(a: WatchRow, b: WatchRow): number {
  return (
    ascending(a.scraped_at, b.scraped_at) ||
    a.watching_status - b.watching_status ||
    (b.score ?? 0) - (a.score ?? 0) ||
    (b.watched_episodes ?? 0) - (a.watched_episodes ?? 0) ||
    a.anime_id - b.anime_id
  );
}

export interface HistoryOptions {
  allowed: ReadonlySet<number>;
  min: number;
  max: number;
}

export interface HistoryCounts {
  unknown_anime_rows: number;
  status_filtered_rows: number;
}

/**
 * Task B steps 1–3 for one user: allowed statuses only, anime without a semantic id dropped
 * (counted), then, when enough rows are left, sorted with only the last `max` kept.
 */
export function userHistory(user: UserRecord, known: ReadonlyMap<number, CatalogEntry>, o: HistoryOptions, counts: HistoryCounts): UserHistory {
  const rows: WatchRow[] = [];
  for (const row of user.rows) {
    if (!o.allowed.has(row.watching_status)) counts.status_filtered_rows++;
    else if (!known.has(row.anime_id)) counts.unknown_anime_rows++;
    else rows.push(row);
  }
  if (rows.length < o.min) return { user_id: user.user_id, eligible: false, rows };
  rows.sort(compareWatches);
  return { user_id: user.user_id, eligible: true, rows: rows.length > o.max ? rows.slice(rows.length - o.max) : rows };
}

/** Per-user filtered, sorted and truncated watch histories (Task B steps 1–3). */
export default defineTransform({
  type: 'prep-history',
  kind: 'transform',
  description: 'Filters each user’s rows by status and semantic id, then sorts and keeps the last N (Task B steps 1-3).',
  options: z.strictObject({
    task_b_allowed_statuses: intListOption('watching_status values kept (1 watching, 2 completed, 3 on hold, 4 dropped, 6 plan to watch)', [
      1, 2, 3, 4, 6,
    ]),
    task_b_min_history: intOption('users with fewer kept rows get no Task B rows').default(4),
    task_b_max_history: intOption('keep only the last N rows of a history', 1).default(30),
  }),
  inputs: { ports: ['users', 'catalog'], side: ['catalog'] },
  create(ctx, inputs) {
    const o = ctx.options;
    const options: HistoryOptions = { allowed: new Set(o.task_b_allowed_statuses), min: o.task_b_min_history, max: o.task_b_max_history };
    const counts: HistoryCounts = { unknown_anime_rows: 0, status_filtered_rows: 0 };
    let users = 0;
    let short = 0;
    Object.assign(ctx.stats, counts, { users, short_history_users: short, eligible_users: 0 });
    const rows = withCatalog<UserRecord, UserHistory>(inputs.ports.catalog!, inputs.ports.users!, (known) => (batch) => {
      const out: UserHistory[] = [];
      for (const user of batch) {
        const history = userHistory(user, known, options, counts);
        if (!history.eligible) short++;
        if (history.rows.length) out.push(history);
      }
      users += batch.length;
      Object.assign(ctx.stats, counts, { users, short_history_users: short, eligible_users: users - short });
      return out;
    });
    return atEnd(rows, () =>
      ctx.progress.log(
        `Users with a Task B history: ${(users - short).toLocaleString('en-US')}; too short: ${short.toLocaleString('en-US')}; rows of anime without a semantic id: ${counts.unknown_anime_rows.toLocaleString('en-US')}`,
      ),
    );
  },
});
