import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { intOption } from './options.ts';
import { atEnd, withCatalog } from './streams.ts';
import { EncodedExample, RowLines } from './row-lines.ts';
import {
  PooledRow,
  type CatalogEntry,
  type HistoryRow,
  type MaskedHistory,
  type MaskMode,
  type PoolItem,
  type WatchPair,
} from './types.ts';
import type { PrepRow, TaskRow } from './prep-row.ts';

const SENTIMENTS = ['<liked>', '<watch>', '<disliked>', '<dropped>'] as const;
const LEADS = ['A user watched', 'then watched'] as const;

function sentimentCode(row: Pick<HistoryRow, 'score' | 'watching_status'>, positiveMin: number): number {
  if (row.watching_status === 4) return 3;
  const score = row.score ?? 0;
  if (score >= positiveMin) return 0;
  if (score > 0 && score <= Math.max(1, Math.floor(positiveMin / 2))) return 2;
  return 1;
}

/** Task B step 5 sentiment of one watch. */
export const sentiment = (row: Pick<HistoryRow, 'score' | 'watching_status'>, positiveMin: number): string =>
  SENTIMENTS[sentimentCode(row, positiveMin)]!;

/** String.fromCharCode over a long array would overflow the stack; this many units a call is safe. */
const UNITS_PER_CALL = 8192;

/**
 * What a user's Task B rows are made from; the user's masked histories share it. Its codes are
 * one string of UTF-16 units, because a sampler holds up to its quota of these: as an Int32Array
 * a sequence took ~500 bytes with the buffer's bookkeeping, as a string ~150.
 */
class Sequence {
  /**
   * The anime ids and their JSON, made when first written and
   * shared by later writes (a small pool is written many times).
   */
  private ids?: { list: number[]; json: string };

  /**
   * `codes`: for each position its anime as an index into the catalog's Segments (one unit, or a
   * high and a low one in a catalog of more than 65,536 anime), then for each position its index
   * into SENTIMENTS.
   */
  private constructor(
    private readonly codes: string,
    readonly length: number,
    private readonly wide: boolean,
  ) {}

  static of(rows: readonly HistoryRow[], positiveMin: number, segments: Segments): Sequence {
    const n = rows.length;
    const { wide } = segments;
    const units = new Uint16Array((wide ? 3 : 2) * n);
    for (let i = 0; i < n; i++) {
      const k = segments.indexOf(rows[i]!.anime_id);
      if (wide) {
        units[2 * i] = k >>> 16;
        units[2 * i + 1] = k & 0xffff;
      } else units[i] = k;
      units[units.length - n + i] = sentimentCode(rows[i]!, positiveMin);
    }
    let codes = '';
    for (let at = 0; at < units.length; at += UNITS_PER_CALL)
      codes += String.fromCharCode.apply(null, units.subarray(at, at + UNITS_PER_CALL) as unknown as number[]);
    return new Sequence(codes, n, wide);
  }

  /** Position i's anime, as its index into the catalog's Segments. */
  anime(i: number): number {
    return this.wide
      ? this.codes.charCodeAt(2 * i) * 65536 + this.codes.charCodeAt(2 * i + 1)
      : this.codes.charCodeAt(i);
  }

  /** Position i's index into SENTIMENTS. */
  sentiment(i: number): number {
    return this.codes.charCodeAt(this.codes.length - this.length + i);
  }

  idsFrom(segments: Segments): { list: number[]; json: string } {
    if (!this.ids) {
      const list = new Array<number>(this.length);
      for (let i = 0; i < this.length; i++) list[i] = segments.animeIds[this.anime(i)]!;
      this.ids = { list, json: JSON.stringify(list) };
    }
    return this.ids;
  }
}

const bytesOf = (text: string) => new Uint8Array(Buffer.from(text));
// A position's text is lead + semantic id + sentiment; a position after the first carries the
// space that joins it to the one before, so an input is its positions back to back.
const FIRST_LEAD = bytesOf(`${LEADS[0]} <anime_start>`);
const LATER_LEAD = bytesOf(` ${LEADS[1]} <anime_start>`);
const ID_END = bytesOf('<anime_end> ');
const SENTIMENT_BYTES = SENTIMENTS.map(bytesOf);
const MASKED_BYTES = LEADS.map((lead, l) => bytesOf(`${l === 0 ? '' : ' '}${lead} <anime_start>[MASK]<anime_end>`));

/**
 * The semantic ids of a catalog as a Task B line holds them (JSON string content, UTF-8), each
 * between a later position's lead and the id's closing tag, back to back in one small array:
 * rows copy ~30 ids each from anywhere in the catalog, and one compact array stays in the
 * processor's cache where 17k × 8 ready-made segment strings did not (measured: 3x faster).
 */
class Segments {
  readonly sids: string[] = [];
  readonly animeIds: number[] = [];
  readonly sidJson: string[] = [];
  /**
   * Id k after a later position's lead, and followed by ID_END:
   * views of one array, made once so copying allocates nothing.
   */
  readonly later: Uint8Array[] = [];
  /** The same without the lead, for the first position. */
  readonly first: Uint8Array[] = [];
  /** 1 where id k's JSON form holds escapes, so its text differs from its bytes. */
  readonly escaped: Uint8Array;
  /** Whether an index takes two UTF-16 units in a Sequence's codes. */
  readonly wide: boolean;
  private readonly index = new Map<number, number>();

  constructor(catalog: ReadonlyMap<number, CatalogEntry>) {
    const encoded: Uint8Array[] = [];
    this.escaped = new Uint8Array(catalog.size);
    this.wide = catalog.size > 65536;
    for (const [animeId, { sid }] of catalog) {
      const json = JSON.stringify(sid);
      this.escaped[this.sids.length] = json.length !== sid.length + 2 ? 1 : 0;
      this.index.set(animeId, this.sids.length);
      this.sids.push(sid);
      this.animeIds.push(animeId);
      this.sidJson.push(json);
      encoded.push(LATER_LEAD, Buffer.from(json.slice(1, -1)), ID_END);
    }
    const bytes = new Uint8Array(Buffer.concat(encoded));
    for (let k = 0, at = 0; k < this.sids.length; k++) {
      const end = at + LATER_LEAD.length + encoded[3 * k + 1]!.length + ID_END.length;
      this.later.push(bytes.subarray(at, end));
      this.first.push(bytes.subarray(at + LATER_LEAD.length, end));
      at = end;
    }
  }

  indexOf(animeId: number): number {
    return this.index.get(animeId)!;
  }
}

const segmentsOf = new WeakMap<ReadonlyMap<number, CatalogEntry>, Segments>();

function segmentsFor(catalog: ReadonlyMap<number, CatalogEntry>): Segments {
  let segments = segmentsOf.get(catalog);
  if (!segments) segmentsOf.set(catalog, (segments = new Segments(catalog)));
  return segments;
}

/** Steps 5–6, made when the row is written. */
class TaskBRow extends PooledRow {
  constructor(
    readonly userId: number,
    private readonly mode: MaskMode,
    private readonly masked: number,
    private readonly sequence: Sequence,
    private readonly segments: Segments,
  ) {
    super();
  }

  get key(): string {
    return `B:${this.userId}:${this.mode}`;
  }

  /**
   * The unmasked anime in order and the masked one, read from the codes: no text is made, and
   * nothing is kept (idsFrom would hold the ids of every sampled row until it is written).
   */
  watchPair(): WatchPair {
    const { sequence, segments, masked } = this;
    const history: number[] = [];
    for (let i = 0; i < sequence.length; i++) if (i !== masked) history.push(segments.animeIds[sequence.anime(i)]!);
    return { history, target: segments.animeIds[sequence.anime(masked)]! };
  }

  /** The row on its own, read back from its encoded line, so the two can never disagree. */
  render(): TaskRow {
    const { example_id: _, ...row } = this.encode(new RowLines(1 << 12), '');
    return row;
  }

  /**
   * The line goes out as bytes copied from the catalog's id bytes, and the example's input is
   * read back from them only if a sink asks for it (the JSONL writer never does).
   */
  encode(out: RowLines, example_id: string): PrepRow {
    const { masked, sequence, segments } = this;
    const { length } = sequence;
    out.head(example_id);
    out.contentStart();
    out.ascii('"task":"B","input":"');
    const inputStart = out.position;
    let escaped = false;
    for (let i = 0; i < length; i++) {
      const lead = i === 0 ? 0 : 1;
      if (i === masked) out.copy(MASKED_BYTES[lead]!);
      else {
        const k = sequence.anime(i);
        if (segments.escaped[k] === 1) escaped = true;
        if (lead === 0) {
          out.copy(FIRST_LEAD);
          out.copy(segments.first[k]!);
        } else out.copy(segments.later[k]!);
        out.smallCopy(SENTIMENT_BYTES[sequence.sentiment(i)]!);
      }
    }
    const inputEnd = out.position;
    const target = sequence.anime(masked);
    out.text(`","output":${segments.sidJson[target]}`);
    out.contentEnd();
    const ids = sequence.idsFrom(segments);
    out.ascii(
      `,"anime_ids":${ids.json},"user_id":${this.userId},"meta":{"template_id":"watch_sequence_mask",` +
        `"mask_mode":"${this.mode}","mask_index":${masked},"history_len":${length}}}`,
    );
    out.endLine();
    const input = { source: out, start: inputStart, end: inputEnd, escaped };
    return new EncodedExample(example_id, 'B', input, segments.sids[target]!, ids.list, this.userId, this.meta(length));
  }

  private meta(length: number) {
    return { template_id: 'watch_sequence_mask', mask_mode: this.mode, mask_index: this.masked, history_len: length };
  }
}

/**
 * The Task B row of one masked history, deferred (see PoolItem); `sequence` may be shared with the user's other masks.
 */
export function taskBRow(
  history: MaskedHistory,
  catalog: ReadonlyMap<number, CatalogEntry>,
  positiveMin: number,
  sequence?: Sequence,
): PoolItem {
  const segments = segmentsFor(catalog);
  const { user_id, mask_mode, mask_index } = history;
  const made = sequence ?? Sequence.of(history.rows, positiveMin, segments);
  return new TaskBRow(user_id, mask_mode, mask_index, made, segments);
}

/** A pool node's one counter: the rows in its pool. */
export const poolStats = z.object({ pool: z.number() });

/** Task B pool: one masked watch-sequence row per (user, mask mode). */
export default defineTransform({
  type: 'prep-task-b',
  kind: 'transform',
  description: 'Builds the Task B pool: watch sequences with sentiment tags and one masked semantic id.',
  options: z.strictObject({
    task_b_positive_score_min: intOption(
      'a score at least this high is <liked>; 0 < score <= max(1, floor(min/2)) is <disliked>',
    ).default(7),
  }),
  inputs: { masks: port<MaskedHistory>(), catalog: port<CatalogEntry>({ side: true }) },
  stats: poolStats,
  create(ctx, inputs) {
    const positiveMin = ctx.options.task_b_positive_score_min;
    let pool = 0;
    ctx.stats.pool = pool;
    const rows = withCatalog<MaskedHistory, PoolItem>(
      inputs.ports.catalog,
      inputs.ports.masks,
      (catalog) => (batch) => {
        const out = new Array<PoolItem>(batch.length);
        let sequence: Sequence | undefined;
        for (let i = 0; i < batch.length; i++) {
          const history = batch[i]!;
          // A user's masks arrive together and share one history.
          if (i === 0 || history.rows !== batch[i - 1]!.rows)
            sequence = Sequence.of(history.rows, positiveMin, segmentsFor(catalog));
          out[i] = taskBRow(history, catalog, positiveMin, sequence);
        }
        pool += batch.length;
        ctx.stats.pool = pool;
        return out;
      },
    );
    return atEnd(rows, () => ctx.progress.log(`Task B pool: ${pool.toLocaleString('en-US')} rows`));
  },
});
