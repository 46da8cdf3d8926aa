import type Database from 'better-sqlite3';
import type { HistoryRow, WatchRow } from '../types.ts';
import { badUserId, historyRow, userHistory, type HistoryCounts, type HistoryOptions } from '../user-history.ts';
import { historySql, loadHistoryRules, rowsSql } from './history-query.ts';

export interface ScanRequest {
  allowedStatuses: number[];
  min: number;
  max: number;
  /** anime_id of every catalog entry, i.e. every anime with a semantic id. */
  knownIds: number[];
}

/**
 * One user-id range's histories in flat arrays, so a worker hands them over without copying
 * (transferable buffers) and the main thread builds objects only for what it passes on.
 */
export interface ChunkResult {
  users: number;
  userIds: Float64Array;
  eligible: Uint8Array;
  /** Start of each user's entries in `entries` (length users + 1). */
  offsets: Uint32Array;
  /** The rows passed on, in history order, each anime_id × 2^16 + watching_status × 1024 + score (user-history.c). */
  entries: Float64Array;
  /** Users read row by row (those user_history cannot be sure of), with the rows the reference rules kept. */
  exact: { index: number; rows: HistoryRow[] }[];
  counts: ChunkCounts;
  /**
   * The last user read when the read stopped at its user limit, for the next
   * read of the range to go on after; undefined when the range is done.
   */
  resumeAfter?: number;
}

export interface ChunkCounts extends HistoryCounts {
  rows: number;
  users: number;
  eligible_users: number;
}

/** A row of `entries` as the history row it stands for. */
export const unpackEntry = (entry: number): HistoryRow => ({
  anime_id: Math.floor(entry / 65536),
  watching_status: Math.floor(entry / 1024) % 64,
  score: entry % 1024,
});

/** Scans user-id ranges of one connection; holds the statements between ranges. */
export class RangeScanner {
  private readonly history: Database.Statement;
  private readonly historyAfter: Database.Statement;
  private readonly rows: Database.Statement;
  private readonly knownSet: Set<number>;
  private readonly options: HistoryOptions;

  constructor(
    private readonly db: Database.Database,
    request: ScanRequest,
    extension: string,
  ) {
    loadHistoryRules(db, request, extension);
    this.history = db.prepare(historySql()).raw(true);
    this.historyAfter = db.prepare(historySql(true)).raw(true);
    this.rows = db.prepare(rowsSql);
    this.knownSet = new Set(request.knownIds);
    this.options = { allowed: new Set(request.allowedStatuses), min: request.min, max: request.max };
  }

  /**
   * The users with a row in [lo, hi), or after user `after` and below hi, in user_id order: at
   * most `limit` of them, because a read's users are in memory at once and user ids need not be
   * spread evenly. Read in one transaction so follow-up lookups see the same rows. A read that
   * stopped at the limit says which user to go on after.
   */
  scan(lo: number, hi: number, limit = Number.MAX_SAFE_INTEGER, after?: number): ChunkResult {
    return this.db.transaction(() => this.scanRange(lo, hi, limit, after))();
  }

  private scanRange(lo: number, hi: number, limit: number, after: number | undefined): ChunkResult {
    const chunk = new ChunkBuilder();
    const rows =
      after === undefined ? this.history.iterate(lo, hi, limit) : this.historyAfter.iterate(after, hi, limit);
    let last: number | undefined;
    for (const [userId, count, history] of rows as IterableIterator<[number, number, Buffer | null]>) {
      // userIdSpan has checked the ends of the table's ids; a fraction between them shows here.
      if (!Number.isInteger(userId)) throw badUserId(userId);
      chunk.counts.rows += count;
      chunk.counts.users++;
      if (history === null) this.exactUser(chunk, userId);
      else this.fastUser(chunk, userId, doubles(history));
      last = userId;
    }
    return chunk.finish(chunk.counts.users === limit ? last : undefined);
  }

  /** A user as user_history gave it: filtered counts, kept count, then the entries passed on. */
  private fastUser(chunk: ChunkBuilder, userId: number, history: Float64Array): void {
    chunk.counts.status_filtered_rows += history[0]!;
    chunk.counts.unknown_anime_rows += history[1]!;
    chunk.user(userId, history[2]! >= this.options.min);
    chunk.entries(history.subarray(3));
  }

  /** The reference rules on the user's rows as the generic path reads them. */
  private exactUser(chunk: ChunkBuilder, userId: number): void {
    const watches = this.rows.all(userId) as WatchRow[];
    const history = userHistory({ user_id: userId, rows: watches }, this.knownSet, this.options, chunk.counts);
    chunk.user(userId, history.eligible);
    chunk.exactRows(history.rows.map(historyRow));
  }
}

/** A blob of doubles as a Float64Array, copied only when its bytes are not 8-byte aligned. */
const doubles = (blob: Buffer): Float64Array =>
  blob.byteOffset % 8 === 0
    ? new Float64Array(blob.buffer, blob.byteOffset, blob.length / 8)
    : new Float64Array(new Uint8Array(blob).buffer);

class ChunkBuilder {
  readonly counts: ChunkCounts = {
    rows: 0,
    users: 0,
    eligible_users: 0,
    status_filtered_rows: 0,
    unknown_anime_rows: 0,
  };
  private readonly userIds: number[] = [];
  private readonly eligible: number[] = [];
  private readonly offsets: number[] = [0];
  private packed = new Float64Array(4096);
  private size = 0;
  private readonly exact: { index: number; rows: HistoryRow[] }[] = [];

  user(userId: number, eligible: boolean): void {
    if (this.userIds.length) this.offsets.push(this.size);
    this.userIds.push(userId);
    this.eligible.push(eligible ? 1 : 0);
    if (eligible) this.counts.eligible_users++;
  }

  entries(values: Float64Array): void {
    if (this.size + values.length > this.packed.length) {
      const grown = new Float64Array(2 ** Math.ceil(Math.log2(this.size + values.length)));
      grown.set(this.packed.subarray(0, this.size));
      this.packed = grown;
    }
    this.packed.set(values, this.size);
    this.size += values.length;
  }

  exactRows(rows: HistoryRow[]): void {
    this.exact.push({ index: this.userIds.length - 1, rows });
  }

  finish(resumeAfter: number | undefined): ChunkResult {
    if (this.userIds.length) this.offsets.push(this.size);
    return {
      ...(resumeAfter === undefined ? {} : { resumeAfter }),
      users: this.userIds.length,
      userIds: Float64Array.from(this.userIds),
      eligible: Uint8Array.from(this.eligible),
      offsets: Uint32Array.from(this.offsets),
      entries: this.packed.slice(0, this.size),
      exact: this.exact,
      counts: this.counts,
    };
  }
}

export const transferables = (r: ChunkResult): ArrayBuffer[] =>
  [r.userIds, r.eligible, r.offsets, r.entries].map((a) => a.buffer as ArrayBuffer);
