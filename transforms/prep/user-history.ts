import { DataError } from '../../engine/errors.ts';
import type { HistoryRow, UserHistory, UserRecord, WatchRow } from './types.ts';

/**
 * Task B steps 1–3 for one user, as plain functions, with the rules each user_anime value must
 * meet: the reference the `prep-history` node runs on every user and the fast user pass runs on
 * the users its SQLite extension cannot be sure of (transforms/prep/user-histories/user-history.c,
 * which applies the same rules in C and leaves every value it does not accept to these).
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

/**
 * The largest id prep carries, in magnitude: 2^53 - 1, the last integer a JavaScript number (and
 * most JSON readers, which the output's `user_id` goes to) holds exactly. Past it, 2^53 + 1 reads
 * as 2^53: two users would become one, or a user would fall outside every id range.
 */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

/** An id prep can carry: an integer of at most MAX_ID in magnitude, read as a number or exactly (a BigInt). */
export const isId = (value: unknown): boolean =>
  typeof value === 'bigint' ? value >= -MAX_ID && value <= MAX_ID : Number.isSafeInteger(value);

/** A SQLite value as SQL writes it, for an error line: NULL, 7.5, 'high', X'02'. */
export function sqlValue(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') return `'${value.replace(/'/g, "''")}'`;
  if (value instanceof Uint8Array) return `X'${Buffer.from(value).toString('hex').toUpperCase()}'`;
  return String(value);
}

const ID_RANGE = `an integer from -${MAX_ID} to ${MAX_ID} (2^53 - 1, the largest id a JSON number holds exactly)`;

/**
 * The error for a user_id prep cannot carry (docs/prep.md, "Bad values in user_anime"). The fast
 * pass reads ids exactly and names 2^53 + 1 as it is; the generic path gets rounded numbers from
 * sqlite-source, and names the id as rounded.
 */
export const badUserId = (value: unknown): DataError =>
  new DataError(`table 'user_anime', column 'user_id': found ${sqlValue(value)}, expected ${ID_RANGE}`);

/** What each column of a user_anime row must hold; a row is checked in this order. */
const VALUE_RULES: { column: keyof WatchRow; expected: string; holds: (value: unknown) => boolean }[] = [
  { column: 'anime_id', expected: ID_RANGE, holds: isId },
  { column: 'watching_status', expected: 'an integer', holds: (v) => Number.isInteger(v) },
  {
    column: 'score',
    expected: 'an integer from 0 to 10',
    holds: (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 10,
  },
  {
    column: 'watched_episodes',
    expected: 'an integer of 0 or more, or NULL',
    holds: (v) => v === null || (Number.isInteger(v) && (v as number) >= 0),
  },
  { column: 'scraped_at', expected: 'text (an ISO time) or NULL', holds: (v) => v === null || typeof v === 'string' },
];

/**
 * Throws a DataError naming the table, column, user, anime, value and what was expected for the
 * first value of `row` that breaks its column's rule (docs/prep.md, "Bad values in user_anime").
 */
export function checkWatch(row: WatchRow, user_id: number): void {
  for (const { column, expected, holds } of VALUE_RULES) {
    const value: unknown = row[column];
    if (holds(value)) continue;
    const where = column === 'anime_id' ? `user ${user_id}` : `user ${user_id}, anime ${row.anime_id}`;
    throw new DataError(
      `table 'user_anime', column '${column}', ${where}: found ${sqlValue(value)}, expected ${expected}`,
    );
  }
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
 * Every row checked (checkWatch: a bad value stops the run), then allowed statuses only, anime
 * without a semantic id dropped (counted), then, when enough rows are left, sorted with only the
 * last `max` kept.
 */
export function userHistory(
  user: UserRecord,
  known: KnownAnime,
  o: HistoryOptions,
  counts: HistoryCounts,
): UserHistory {
  const rows: WatchRow[] = [];
  for (const row of user.rows) {
    checkWatch(row, user.user_id);
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
