import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { badUserId, isId, MAX_ID } from '../user-history.ts';

/**
 * The SQLite extension behind the fast user pass (user-history.c), built by `npm install`'s
 * install script with node-gyp, as better-sqlite3 itself is.
 */
export const HISTORY_EXTENSION = fileURLToPath(new URL('./build/Release/user_history.node', import.meta.url));

/** What to tell a user whose checkout has not built the extension; undefined when it is built. */
export const extensionMissing = (extension = HISTORY_EXTENSION): string | undefined =>
  existsSync(extension)
    ? undefined
    : `the user-history SQLite extension ${extension} is not built: run 'node scripts/setup.mjs' (or 'npm install')`;

/** The extension packs anime ids below this (user-history.c). */
const ANIME_LIMIT = 2 ** 20;

/**
 * Loads the extension at `extension` (HISTORY_EXTENSION, as the main thread resolves it) into a
 * connection and gives it the history rules (see user-history.c). The path is always passed: a
 * scan worker's script, bundled into the cache folder when run from source, would resolve it
 * beside the bundle instead.
 */
export function loadHistoryRules(
  db: Database.Database,
  rules: { allowedStatuses: number[]; knownIds: number[]; min: number; max: number },
  extension: string,
): void {
  try {
    db.loadExtension(extension);
  } catch {
    // SQLite's message is its last try, the path with '.so' appended: it would send a user looking for the wrong file.
    throw new Error(
      `cannot load the user-history SQLite extension ${extension}: rebuild it with 'node scripts/setup.mjs'`,
    );
  }
  let mask = 0n;
  for (const status of rules.allowedStatuses) if (status >= 0 && status < 64) mask |= 1n << BigInt(status);
  // Anime ids the extension packs are below 2^20; a catalog id above that only ever meets users read row by row.
  const known = Buffer.alloc(
    Math.min(
      ANIME_LIMIT,
      rules.knownIds.reduce((a, b) => Math.max(a, b + 1), 0),
    ),
  );
  for (const id of rules.knownIds) if (id >= 0 && id < known.length) known[id] = 1;
  db.prepare('SELECT user_history_config(?, ?, ?, ?)').get(mask, known, rules.min, rules.max);
}

/**
 * One row per user with a row in [lo, hi), the first `limit` of them: user_id, its row count, and
 * user_history's blob, or NULL for a user to read row by row. SQLite groups each user's rows
 * (adjacent in primary-key order, so no sort, and it stops at the limit) and the aggregate applies
 * the history rules in C. With `after`, the lower bound is exclusive, to read on after a user.
 */
export const historySql = (after = false) => `SELECT user_id, count(*),
  user_history(watching_status, score, watched_episodes, anime_id, scraped_at)
FROM user_anime
WHERE user_id ${after ? '>' : '>='} ? AND user_id < ?
GROUP BY user_id
LIMIT ?`;

/** A user the extension cannot be sure of, row by row as the generic path reads it. */
export const rowsSql = `SELECT user_id, anime_id, score, watching_status, watched_episodes, scraped_at
FROM user_anime WHERE user_id = ? ORDER BY anime_id`;

/**
 * The user-id span [min, max], to split the pass into ranges; undefined when user_anime is empty.
 * The ids are checked first (badUserId), from the ends of the index led by user_id alone, where
 * SQLite sorts NULL first and text and blobs after every number: the first id (NULL, a fraction,
 * or a number below -(2^53 - 1)) and the first above 2^53 - 1 (a number too large, or the first
 * text or blob), read exactly, so 2^53 + 1 is named as it is. A fraction between the ends is found
 * when its user is read (RangeScanner), as prep-group-users finds it. min() and max() are separate
 * statements: SQLite reads either alone from the index's end, but scans the whole table for both.
 */
export function userIdSpan(db: Database.Database): [number, number] | undefined {
  const value = (sql: string): unknown => db.prepare(sql).pluck().safeIntegers().get();
  const first = value('SELECT user_id FROM user_anime ORDER BY user_id LIMIT 1');
  if (first === undefined) return undefined;
  if (!isId(first)) throw badUserId(first);
  const beyond = value(`SELECT min(user_id) FROM user_anime WHERE user_id > ${MAX_ID}`);
  if (beyond !== null) throw badUserId(beyond);
  // A fraction as the largest id: the ranges end at its floor + 1, so they still hold it.
  return [Number(first), Math.floor(Number(value('SELECT max(user_id) FROM user_anime')))];
}

/** The shape of historySql without the extension's function, for asking SQLite how it would read a range. */
const rangePlanSql =
  'EXPLAIN QUERY PLAN SELECT user_id, count(*) FROM user_anime WHERE user_id >= ? AND user_id < ? GROUP BY user_id';

/**
 * What to tell a user whose user_anime has no index led by user_id (the spec's primary key is
 * (user_id, anime_id); a table written by a dataframe library often has none); undefined when
 * SQLite can seek to a range. Without one, every range and every user read row by row would scan
 * the whole table: at 1M rows 9 s where 4 s, and hours at 100M.
 */
export function rangeIndexMissing(db: Database.Database): string | undefined {
  const plan = db.prepare(rangePlanSql).all(0, 1) as { detail: string }[];
  if (plan.some((step) => step.detail.startsWith('SEARCH'))) return undefined;
  return (
    `database ${db.name}, table 'user_anime': no index led by ` +
    `user_id (expected the primary key (user_id, anime_id)), ` +
    `so every user-id range would read the whole table; add one: ` +
    `CREATE INDEX user_anime_by_user ON user_anime(user_id, anime_id)`
  );
}
