import type Database from 'better-sqlite3';
import type { HistoryRow, WatchRow } from '../../transforms/prep/types.ts';
import { historyRow, userHistory, type HistoryCounts, type HistoryOptions } from '../../transforms/prep/user-history.ts';
import { historySql, parseIntegers, rowsSql, STAMP_SEPARATOR, stampsSql } from './history-query.ts';

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
  /** The rows passed on, in history order, packed by packEntry. */
  entries: Float64Array;
  /** Users read row by row (see history-query.ts), with the rows the reference rules kept. */
  exact: { index: number; rows: HistoryRow[] }[];
  counts: ChunkCounts;
}

export interface ChunkCounts extends HistoryCounts {
  rows: number;
  users: number;
  eligible_users: number;
}

// Keys are shifted by this so every field reads back with plain non-negative division.
const KEY_OFFSET = 1023 * 2 ** 36 + 65535 * 2 ** 20;
const STATUS_UNIT = 2 ** 46;
const SCORE_UNIT = 2 ** 36;
const ANIME_UNIT = 2 ** 20;

/** anime_id, status and score of a shifted key, as one number: anime_id × 2^16 + status × 1024 + score. */
const packEntry = (u: number) => ((u % ANIME_UNIT) * 64 + Math.floor(u / STATUS_UNIT)) * 1024 + (1023 - (Math.floor(u / SCORE_UNIT) % 1024));

export const unpackEntry = (entry: number): HistoryRow => ({
  anime_id: Math.floor(entry / 65536),
  watching_status: Math.floor(entry / 1024) % 64,
  score: entry % 1024,
});

/** Scans user-id ranges of one connection; holds the statements and scratch buffers between ranges. */
export class RangeScanner {
  private readonly history: Database.Statement;
  private readonly stamps: Database.Statement;
  private readonly rows: Database.Statement;
  private readonly allowed = new Uint8Array(64);
  private readonly known: Uint8Array;
  private readonly knownSet: Set<number>;
  private readonly options: HistoryOptions;
  private keys = new Float64Array(1024);
  private kept = new Float64Array(1024);
  private keptRow = new Uint32Array(1024);

  constructor(
    private readonly db: Database.Database,
    request: ScanRequest,
  ) {
    this.history = db.prepare(historySql).raw(true);
    this.stamps = db.prepare(stampsSql).raw(true);
    this.rows = db.prepare(rowsSql);
    for (const status of request.allowedStatuses) if (status >= 0 && status < 64) this.allowed[status] = 1;
    // Keys hold anime ids below 2^20; a catalog id above that only ever meets exact users.
    this.known = new Uint8Array(Math.min(ANIME_UNIT, request.knownIds.reduce((a, b) => Math.max(a, b + 1), 0)));
    for (const id of request.knownIds) if (id < this.known.length) this.known[id] = 1;
    this.knownSet = new Set(request.knownIds);
    this.options = { allowed: new Set(request.allowedStatuses), min: request.min, max: request.max };
  }

  /** Every user with a row in [lo, hi), in user_id order, read in one transaction so follow-up lookups see the same rows. */
  scan(lo: number, hi: number): ChunkResult {
    return this.db.transaction(() => this.scanRange(lo, hi))();
  }

  private scanRange(lo: number, hi: number): ChunkResult {
    const chunk = new ChunkBuilder();
    for (const [userId, count, keysText, oneStamp] of this.history.iterate(lo, hi) as IterableIterator<[number, number, string | null, number | null]>) {
      chunk.counts.rows += count;
      chunk.counts.users++;
      if (this.keys.length < count) this.grow(count);
      const n = keysText === null ? 0 : parseIntegers(keysText, this.keys);
      if (n !== count || !this.fastUser(chunk, userId, n, oneStamp === 1)) this.exactUser(chunk, userId);
    }
    return chunk.finish();
  }

  /** Filters, orders and truncates one user's keys; false when the user must be read row by row. */
  private fastUser(chunk: ChunkBuilder, userId: number, n: number, oneStamp: boolean): boolean {
    const { keys, kept, keptRow, allowed, known } = this;
    let statusFiltered = 0;
    let unknown = 0;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const u = keys[i]! + KEY_OFFSET;
      if (allowed[Math.floor(u / STATUS_UNIT)] !== 1) statusFiltered++;
      else if (known[u % ANIME_UNIT] !== 1) unknown++;
      else {
        kept[k] = u;
        keptRow[k++] = i;
      }
    }
    const { min, max } = this.options;
    const eligible = k >= min;
    if (eligible && !oneStamp && !this.orderByStamp(userId, n, k)) return false;
    if (eligible && oneStamp) kept.subarray(0, k).sort();
    chunk.counts.status_filtered_rows += statusFiltered;
    chunk.counts.unknown_anime_rows += unknown;
    chunk.user(userId, eligible);
    for (let i = eligible ? Math.max(0, k - max) : 0; i < k; i++) chunk.entry(packEntry(kept[i]!));
    return true;
  }

  /**
   * Reorders the first `k` kept keys by (scraped_at, key): scraped_at ranks bucket them, each
   * bucket sorts natively. False when the follow-up read does not line up with the keys.
   */
  private orderByStamp(userId: number, n: number, k: number): boolean {
    const [animeText, stampText] = this.stamps.get(userId) as [string | null, string | null];
    const anime = new Float64Array(n);
    if (animeText === null || stampText === null || parseIntegers(animeText, anime) !== n) return false;
    const { keys, kept, keptRow } = this;
    for (let i = 0; i < n; i++) if (anime[i] !== (keys[i]! + KEY_OFFSET) % ANIME_UNIT) return false;
    const stamps = new Array<string>(k);
    let row = 0;
    let start = 0;
    for (let j = 0; j < k; j++) {
      for (; row < keptRow[j]!; row++) start = stampText.indexOf(STAMP_SEPARATOR, start) + 1;
      const end = stampText.indexOf(STAMP_SEPARATOR, start);
      stamps[j] = end === -1 ? stampText.slice(start) : stampText.slice(start, end);
    }
    if (countOf(stampText, STAMP_SEPARATOR) !== n - 1) return false;
    const distinct = [...new Set(stamps)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const rank = new Map(distinct.map((stamp, i) => [stamp, i]));
    const starts = new Uint32Array(distinct.length + 1);
    for (const stamp of stamps) starts[rank.get(stamp)! + 1]!++;
    for (let r = 0; r < distinct.length; r++) starts[r + 1]! += starts[r]!;
    const fill = starts.slice(0, distinct.length);
    const ordered = new Float64Array(k);
    for (let j = 0; j < k; j++) ordered[fill[rank.get(stamps[j]!)!]!++] = kept[j]!;
    for (let r = 0; r < distinct.length; r++) ordered.subarray(starts[r], starts[r + 1]).sort();
    kept.set(ordered);
    return true;
  }

  /** The reference rules on the user's rows as the generic path reads them. */
  private exactUser(chunk: ChunkBuilder, userId: number): void {
    const watches = this.rows.all(userId) as WatchRow[];
    const history = userHistory({ user_id: userId, rows: watches }, this.knownSet, this.options, chunk.counts);
    chunk.user(userId, history.eligible);
    chunk.exactRows(history.rows.map(historyRow));
  }

  private grow(size: number): void {
    const length = 2 ** Math.ceil(Math.log2(size));
    this.keys = new Float64Array(length);
    this.kept = new Float64Array(length);
    this.keptRow = new Uint32Array(length);
  }
}

function countOf(text: string, char: string): number {
  let count = 0;
  for (let at = text.indexOf(char); at !== -1; at = text.indexOf(char, at + 1)) count++;
  return count;
}

class ChunkBuilder {
  readonly counts: ChunkCounts = { rows: 0, users: 0, eligible_users: 0, status_filtered_rows: 0, unknown_anime_rows: 0 };
  private readonly userIds: number[] = [];
  private readonly eligible: number[] = [];
  private readonly offsets: number[] = [0];
  private entries = new Float64Array(4096);
  private size = 0;
  private readonly exact: { index: number; rows: HistoryRow[] }[] = [];

  user(userId: number, eligible: boolean): void {
    if (this.userIds.length) this.offsets.push(this.size);
    this.userIds.push(userId);
    this.eligible.push(eligible ? 1 : 0);
    if (eligible) this.counts.eligible_users++;
  }

  entry(value: number): void {
    if (this.size === this.entries.length) {
      const grown = new Float64Array(this.entries.length * 2);
      grown.set(this.entries);
      this.entries = grown;
    }
    this.entries[this.size++] = value;
  }

  exactRows(rows: HistoryRow[]): void {
    this.exact.push({ index: this.userIds.length - 1, rows });
  }

  finish(): ChunkResult {
    if (this.userIds.length) this.offsets.push(this.size);
    return {
      users: this.userIds.length,
      userIds: Float64Array.from(this.userIds),
      eligible: Uint8Array.from(this.eligible),
      offsets: Uint32Array.from(this.offsets),
      entries: this.entries.slice(0, this.size),
      exact: this.exact,
      counts: this.counts,
    };
  }
}

export const transferables = (r: ChunkResult): ArrayBuffer[] =>
  [r.userIds, r.eligible, r.offsets, r.entries].map((a) => a.buffer as ArrayBuffer);
