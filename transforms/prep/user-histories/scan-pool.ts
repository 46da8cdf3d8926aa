import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { workerScript } from '../../../engine/worker-script.ts';
import { openReadOnly } from '../../../sources/sqlite-schema.ts';
import { HISTORY_EXTENSION, userIdSpan } from './history-query.ts';
import { RangeScanner, type ChunkResult, type ScanRequest } from './scan-chunk.ts';

/**
 * A scan worker's young generation. Its garbage is each user's values, dead by the next user, but
 * V8 let a worker's heap reach ~40 MB by the end of a 100M-row scan when those were every row's
 * key and scrape time as text (before user-history.c). Capped, peak RSS at 100M rows measured
 * 22-37 MB lower in three pairs, with the same number of scavenges (~140 a worker at 10M rows,
 * ~50 ms in all); a user's blob is smaller, and the cap still bounds it.
 */
const YOUNG_GENERATION_MB = 16;

/** Splits [min, max] into `count` contiguous half-open ranges of user ids. */
export function userRanges(min: number, max: number, count: number): [number, number][] {
  const span = max - min + 1;
  const n = Math.max(1, Math.min(count, span));
  return Array.from(
    { length: n },
    (_, i) => [min + Math.floor((span * i) / n), min + Math.floor((span * (i + 1)) / n)] as [number, number],
  );
}

type Reply = { read: number; result: ChunkResult } | { read: number; error: string };

/** A read's result as the scan hands it on: `endsRange` once every read of its range has come. */
export type ScannedChunk = ChunkResult & { endsRange: boolean };

/** One read: users in `bounds` (after user `after`, when set), for the range at index `range`. */
interface Read {
  range: number;
  bounds: [number, number];
  after?: number;
  result?: Promise<ChunkResult>;
}

/**
 * The reads that go on from a read stopped at its user limit: the rest of its bounds, halved by
 * user id when it is wide enough, so a range holding many users is read by every worker, in
 * reads that narrow until they part the users (a cluster of ids needs ~log2(range / cluster)).
 */
function readsAfter(read: Read, after: number): Read[] {
  const [lo, hi] = read.bounds;
  const mid = after + Math.floor((hi - after) / 2);
  if (mid <= after + 1) return [{ range: read.range, bounds: [lo, hi], after }];
  return [
    { range: read.range, bounds: [lo, mid], after },
    { range: read.range, bounds: [mid, hi] },
  ];
}

/**
 * Scans user_anime in user-id ranges, on worker threads (each with its own read-only connection)
 * or, with no workers, on the calling thread. Results come back in range order whichever worker
 * finished first, so the output never depends on timing. A range with more than `usersPerRead`
 * users is read in several reads (see readsAfter), so a cluster of user ids (the ranges are equal
 * spans of ids) holds no more in memory than an ordinary range. The workers start at
 * construction, so they load while the catalog is still being read.
 */
export class HistoryScan {
  private readonly workers: Worker[];
  private db: Database.Database | undefined;
  private failure: Error | undefined;
  private closed = false;

  constructor(
    private readonly database: string,
    workers: number,
    private readonly usersPerRead: number,
  ) {
    this.workers = Array.from(
      { length: workers },
      () =>
        new Worker(workerScript(new URL('./scan-worker.ts', import.meta.url)), {
          workerData: { database, extension: HISTORY_EXTENSION },
          resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
        }),
    );
    for (const worker of this.workers) {
      worker.on('error', (error) => (this.failure ??= error));
      // A worker that ends while the scan still needs it would leave the scan waiting forever.
      worker.on('exit', (code) => {
        if (!this.closed) this.failure ??= new Error(`a user_anime scan worker stopped (exit code ${code})`);
      });
    }
  }

  /**
   * Every read's result in user-id order; at most two reads per worker are in flight or waiting,
   * which bounds memory. The workers and the connection are released as soon as the last range is
   * read. `onSplit` hears how many ranges there are (fewer than asked when user ids are few)
   * before any is read.
   */
  async *chunks(request: ScanRequest, ranges: number, onSplit?: (count: number) => void): AsyncGenerator<ScannedChunk> {
    try {
      this.db = openReadOnly(this.database);
      const span = userIdSpan(this.db);
      if (!span) return;
      const spans = userRanges(...span, ranges);
      onSplit?.(spans.length);
      if (this.workers.length) yield* this.onWorkers(request, spans);
      else {
        const scanner = new RangeScanner(this.db, request, HISTORY_EXTENSION);
        for (const [lo, hi] of spans) {
          let after: number | undefined;
          do {
            if (this.closed) return;
            const result = scanner.scan(lo, hi, this.usersPerRead, after);
            after = result.resumeAfter;
            yield Object.assign(result, { endsRange: after === undefined });
          } while (after !== undefined);
        }
      }
    } finally {
      await this.close();
    }
  }

  private async *onWorkers(request: ScanRequest, spans: [number, number][]): AsyncGenerator<ScannedChunk> {
    // The reads not yet handed on, in user-id order: the reads that go on from one follow it directly.
    const reads: Read[] = spans.map((bounds, range) => ({ range, bounds }));
    // Each range's reads not yet handed on.
    const open = spans.map(() => 1);
    const waiting = new Map<number, { read: Read; resolve: (r: ChunkResult) => void; reject: (e: Error) => void }>();
    const idle = [...this.workers];
    let ids = 0;
    const dispatch = () => {
      const window = Math.min(reads.length, 2 * this.workers.length);
      for (let i = 0; i < window && idle.length; i++) {
        const read = reads[i]!;
        if (read.result) continue;
        const id = ids++;
        read.result = new Promise<ChunkResult>((resolve, reject) => waiting.set(id, { read, resolve, reject }));
        read.result.catch(() => {});
        idle.pop()!.postMessage({ read: id, range: read.bounds, limit: this.usersPerRead, after: read.after });
      }
    };
    const fail = (error: Error) => {
      for (const entry of waiting.values()) entry.reject(error);
    };
    for (const worker of this.workers) {
      worker.postMessage({ request });
      worker.on('message', (reply: Reply) => {
        const entry = waiting.get(reply.read)!;
        waiting.delete(reply.read);
        if ('error' in reply) entry.reject(new Error(reply.error));
        else {
          const after = reply.result.resumeAfter;
          if (after !== undefined) {
            const next = readsAfter(entry.read, after);
            open[entry.read.range]! += next.length;
            reads.splice(reads.indexOf(entry.read) + 1, 0, ...next);
          }
          entry.resolve(reply.result);
        }
        idle.push(worker);
        dispatch();
      });
      worker.on('error', fail);
      worker.on('exit', () => this.closed || fail(this.failure ?? new Error('a user_anime scan worker stopped')));
    }
    if (this.failure) throw this.failure;
    dispatch();
    while (reads.length) {
      const read = reads[0]!;
      const result = await read.result!;
      reads.shift();
      dispatch();
      yield Object.assign(result, { endsRange: --open[read.range]! === 0 });
    }
  }

  /** Stops the workers and closes the connection, on success, failure and Ctrl-C alike. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((worker) => worker.terminate()));
    this.db?.close();
  }
}
