/** Row shapes passed between the prep nodes. */
import type { PrepRow, TaskRow } from './prep-row.ts';
import type { RowLines } from './row-lines.ts';

/** One `anime` row after cleaning: every field is either usable text or missing. */
export interface AnimeInfo {
  anime_id: number;
  title: string | null;
  genres: string[];
  studios: string[];
  year: number | null;
  synopsis: string | null;
  type: string | null;
  source: string | null;
}

/** An anime that has a semantic id; `info` is null when the database has no row for it. */
export interface CatalogEntry {
  anime_id: number;
  sid: string;
  /** From the anime row, else from the semantic-id row. */
  genres: string[];
  info: AnimeInfo | null;
}

/**
 * One `user_anime` row as the SQLite source delivers it, typed as the user pass accepts it
 * (checkWatch in user-history.ts; docs/prep.md, "Bad values in user_anime"): integers, a score
 * from 0 to 10, and NULL only for the episodes (ordered as 0) and the scrape time (ordered first).
 */
export interface WatchRow {
  user_id: number;
  anime_id: number;
  score: number;
  watching_status: number;
  watched_episodes: number | null;
  scraped_at: string | null;
}

/** What the steps after the user pass read of a watch. */
export type HistoryRow = Pick<WatchRow, 'anime_id' | 'watching_status' | 'score'>;

/** All of one user's rows, in the order they were read. */
export interface UserRecord {
  user_id: number;
  rows: WatchRow[];
}

/**
 * A user's filtered rows. For an eligible user (enough rows for Task B) they are sorted and
 * truncated to the kept history; for a short one they are the filtered rows as read.
 */
export interface UserHistory {
  user_id: number;
  eligible: boolean;
  rows: HistoryRow[];
}

export type MaskMode = 'last' | 'random';

export interface MaskedHistory {
  user_id: number;
  rows: HistoryRow[];
  mask_mode: MaskMode;
  mask_index: number;
}

export interface Seed {
  user_id: number;
  kind: 'single' | 'triple';
  anime_ids: number[];
}

/** A row not made yet: it holds what its text is made from, and makes it on demand. */
export interface DeferredRow {
  /** The user whose watches made the row (its `user_id`), read without making the row; absent for Task A. */
  readonly userId?: number;
  /** A Task B row's (history, target): read without making the row, see WatchPair. */
  watchPair?(): WatchPair;
  render(): TaskRow;
  /**
   * Writes the row, numbered `example_id`, as one JSON line into `out` (exactly JSON.stringify of
   * the example, content span marked) and returns the example, for rows whose JSON is cheaper to
   * assemble from pieces than to serialize. The example may read its text back from `out`.
   */
  encode?(out: RowLines, example_id: string): PrepRow;
}

/**
 * A pool row with the stable key that sampling and shuffling hash (e.g. `B:<user_id>:<mask_mode>`).
 * `row` may be deferred: a pool can be many times its quota and is held until sampling ends, and
 * a Task B row is kilobytes of text, so text is made only for the rows sampled, when they are
 * written (madeRow). Deferred rows are small class instances rather than closures: tsx keeps
 * function names, and naming a closure gives it a ~250-byte property store.
 *
 * The built-in tasks' deferred rows are their own pool items, with `key` a getter: the key is
 * hashed once when sampled and once when shuffled, and a string held per row (with the object
 * pairing it to its row) cost ~80 bytes a row across the 400k rows sampling and shuffling hold.
 */
export interface PoolItem<R extends TaskRow | DeferredRow = TaskRow | DeferredRow> {
  readonly key: string;
  readonly row: R;
}

/** A deferred row that is its own pool item, as the built-in tasks' rows are (see PoolItem). */
export abstract class PooledRow implements DeferredRow, PoolItem<DeferredRow> {
  abstract get key(): string;

  get row(): DeferredRow {
    return this;
  }

  abstract render(): TaskRow;
}

export const madeRow = (row: PoolItem['row']): TaskRow => ('render' in row ? row.render() : row);

/** The user a pool row belongs to (null for Task A), made or deferred. */
export const userOf = (row: PoolItem['row']): number | null => ('render' in row ? (row.userId ?? null) : row.user_id);

/**
 * What a Task B row teaches: the watches it shows, in order, and the anime it asks for. A
 * held-out example's pair is its history and target; a training row's, its unmasked anime and
 * its masked one (so a `random` mask that hides a held-out target among the same other watches
 * counts too).
 */
export interface WatchPair {
  history: readonly number[];
  target: number;
}

/**
 * One held-out user's evaluation example (a line of llm_prep_valid.jsonl or llm_prep_test.jsonl);
 * field order is the file's. `history_len` is the length of `history`, the watches the prompt shows.
 */
export interface HeldOutExample {
  user_id: number;
  history: number[];
  target_anime_id: number;
  target_sid: string;
  target_sentiment: string;
  history_len: number;
  prompt: string;
}
