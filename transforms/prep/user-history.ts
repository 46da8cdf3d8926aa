import type { HistoryRow, UserHistory, UserRecord, WatchRow } from './types.ts';

/**
 * Task B steps 1–3 for one user, as plain functions: the reference the `prep-history` node runs
 * on every user and the fast user pass runs on the users its SQLite extension cannot be sure of
 * (transforms/prep/user-histories/user-history.c, which applies the same rules in C).
 */

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

/** The anime that have a semantic id: the catalog's Map, or any set of ids. */
export interface KnownAnime {
  has(anime_id: number): boolean;
}

/**
 * Allowed statuses only, anime without a semantic id dropped (counted), then, when enough rows
 * are left, sorted with only the last `max` kept.
 */
export function userHistory(
  user: UserRecord,
  known: KnownAnime,
  o: HistoryOptions,
  counts: HistoryCounts,
): UserHistory {
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

/** The fields the steps after the user pass read; a row is narrowed to them before it crosses a thread. */
export const historyRow = (row: HistoryRow): HistoryRow => ({
  anime_id: row.anime_id,
  watching_status: row.watching_status,
  score: row.score,
});
