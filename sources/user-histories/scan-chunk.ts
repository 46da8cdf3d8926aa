import type Database from 'better-sqlite3';
import type { HistoryRow, WatchRow } from '../../transforms/prep/types.ts';
import { historyRow, userHistory, type HistoryCounts, type HistoryOptions } from '../../transforms/prep/user-history.ts';
import { historySql, parseIntegers, rowsSql, STAMP_SEPARATOR } from './history-query.ts';

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
  private readonly rows: Database.Statement;
  private readonly allowed = new Uint8Array(64);
  private readonly known: Uint8Array;
  private readonly knownSet: Set<number>;
  private readonly options: HistoryOptions;
  private keys = new Float64Array(1024);
  private kept = new Float64Array(1024);
  private keptRow = new Uint32Array(1024);
  private ordered = new Float64Array(1024);

  constructor(
    private readonly db: Database.Database,
    request: ScanRequest,
  ) {
    this.history = db.prepare(historySql).raw(true);
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
    for (const [userId, count, keysText, stampText] of this.history.iterate(lo, hi) as IterableIterator<[number, number, string | null, string | null]>) {
      chunk.counts.rows += count;
      chunk.counts.users++;
      if (this.keys.length < count) this.grow(count);
      const n = keysText === null ? 0 : parseIntegers(keysText, this.keys);
      if (n !== count || stampText === null || !this.fastUser(chunk, userId, n, stampText)) this.exactUser(chunk, userId);
    }
    return chunk.finish();
  }

  /** Filters, orders and truncates one user's keys; false when the user must be read row by row. */
  private fastUser(chunk: ChunkBuilder, userId: number, n: number, stampText: string): boolean {
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
    if (eligible && !this.order(stampText, n, k, max)) return false;
    chunk.counts.status_filtered_rows += statusFiltered;
    chunk.counts.unknown_anime_rows += unknown;
    chunk.user(userId, eligible);
    for (let i = eligible ? Math.max(0, k - max) : 0; i < k; i++) chunk.entry(packEntry(kept[i]!));
    return true;
  }

  /**
   * Puts the last `max` of the first `k` kept keys in history order (all that is kept of them):
   * by key alone when the user has one scrape time (the common case, tested on the text as a
   * whole), else by scraped_at rank, then key. False when the times do not split into one per row.
   */
  private order(stampText: string, n: number, k: number, max: number): boolean {
    const kept = this.kept.subarray(0, k);
    const firstEnd = stampText.indexOf(STAMP_SEPARATOR);
    const first = firstEnd === -1 ? stampText : stampText.slice(0, firstEnd);
    if (stampText.length === n * (first.length + 1) - 1 && stampText === (first + STAMP_SEPARATOR).repeat(n - 1) + first) {
      sortLargest(kept, Math.min(k, max));
      return true;
    }
    const stampOf = this.stampOf(stampText, n, k);
    if (!stampOf) return false;
    const { distinct, ids } = stampOf;
    const byText = distinct.map((_, i) => i).sort((a, b) => (distinct[a]! < distinct[b]! ? -1 : distinct[a]! > distinct[b]! ? 1 : 0));
    const rank = new Uint32Array(distinct.length);
    byText.forEach((id, r) => (rank[id] = r));
    const starts = new Uint32Array(distinct.length + 1);
    for (let j = 0; j < k; j++) starts[rank[ids[j]!]! + 1]!++;
    for (let r = 0; r < distinct.length; r++) starts[r + 1]! += starts[r]!;
    // Only the latest scrape times' rows can be among the last `max`: from the latest back, the
    // times whose rows make up the last `need`, the earliest of them (`from`) only partly.
    const need = Math.min(k, max);
    let from = distinct.length - 1;
    while (k - starts[from]! < need) from--;
    const ordered = this.ordered;
    const fill = starts.slice(0, distinct.length);
    for (let j = 0; j < k; j++) {
      const r = rank[ids[j]!]!;
      if (r >= from) ordered[fill[r]!++] = kept[j]!;
    }
    // Against sorting every time's rows, on 10M generated rows (a third of users with several
    // times): the scan in one thread 4.86-5.11 -> 4.67-4.79 CPU-s over six pairs.
    sortLargest(ordered.subarray(starts[from], starts[from + 1]), need - (k - starts[from + 1]!));
    for (let r = from + 1; r < distinct.length; r++) ordered.subarray(starts[r], starts[r + 1]).sort();
    kept.set(ordered.subarray(k - need, k), k - need);
    return true;
  }

  /**
   * The distinct scrape times of the kept rows and, per kept row, which one it has. A user has a
   * few scrape sessions, so a row's time is matched in place against the ones seen so far, with
   * no string made per row; undefined when the text does not split into `n` times.
   */
  private stampOf(stampText: string, n: number, k: number): { distinct: string[]; ids: Uint32Array } | undefined {
    const distinct: string[] = [];
    const ids = new Uint32Array(k);
    const keptRow = this.keptRow;
    let seen: Map<string, number> | undefined;
    for (let i = 0, j = 0, start = 0; i < n; i++) {
      let end = stampText.indexOf(STAMP_SEPARATOR, start);
      if ((end === -1) !== (i === n - 1)) return undefined;
      if (end === -1) end = stampText.length;
      if (j < k && keptRow[j] === i) {
        let id = -1;
        if (seen) id = seen.get(stampText.slice(start, end)) ?? -1;
        else
          for (let d = 0; d < distinct.length; d++)
            if (distinct[d]!.length === end - start && stampText.startsWith(distinct[d]!, start)) {
              id = d;
              break;
            }
        if (id === -1) {
          id = distinct.push(stampText.slice(start, end)) - 1;
          // Rows scraped one by one would make the in-place search quadratic.
          if (distinct.length === 16) seen = new Map(distinct.map((stamp, d) => [stamp, d]));
          else seen?.set(distinct[id]!, id);
        }
        ids[j++] = id;
      }
      start = end + 1;
    }
    return { distinct, ids };
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
    this.ordered = new Float64Array(length);
  }
}

/**
 * Puts the `m` largest values of `a` (distinct), in ascending order, at its end. Keys are unique
 * (anime_id is part of them), so the largest `m` are one set whatever the method; selecting them
 * first measured 2.5x faster than sorting ~300 keys a user.
 */
function sortLargest(a: Float64Array, m: number): void {
  if (a.length > 2 * m) {
    selectLargest(a, m);
    a.subarray(a.length - m).sort();
  } else a.sort();
}

/** Moves the `m` largest values of `a` (distinct) to its end, in no particular order (quickselect). */
export function selectLargest(a: Float64Array, m: number): void {
  const target = a.length - m;
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return;
  }
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
