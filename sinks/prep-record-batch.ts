import { Field, Int64, List, makeData, RecordBatch, Schema, Struct, Utf8, type Data } from 'apache-arrow';
import { DataError } from '../engine/errors.ts';
import { Utf8Buffer } from './utf8-buffer.ts';

/** A prep row as it reaches the Parquet sink. */
export interface PrepRow {
  example_id: string;
  task: string;
  input: string;
  output: string;
  anime_ids: number[];
  user_id: number | null;
  meta: unknown;
}

const TEXT_FIELDS = ['example_id', 'task', 'input', 'output'] as const;

/**
 * The prep row as Arrow (and so Parquet) columns. `meta` differs by task (A, B and C carry
 * different fields), so it is one JSON text column rather than a struct whose shape would have to
 * be the union of all of them.
 */
const ELEMENT = new Field('element', new Int64(), false);
export const PREP_SCHEMA = new Schema([
  ...TEXT_FIELDS.map((name) => new Field(name, new Utf8(), false)),
  new Field('anime_ids', new List(ELEMENT), false),
  new Field('user_id', new Int64(), true),
  new Field('meta', new Utf8(), false),
]);

function problem(row: PrepRow): string | undefined {
  return (
    TEXT_FIELDS.find((key) => typeof row[key] !== 'string') ??
    (!Array.isArray(row.anime_ids) || !row.anime_ids.every(Number.isSafeInteger) ? 'anime_ids' : undefined) ??
    (row.user_id != null && !Number.isSafeInteger(row.user_id) ? 'user_id' : undefined)
  );
}

function grown<T extends Int32Array | Uint8Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  const bigger = new (array.constructor as new (length: number) => T)(Math.max(needed, array.length * 2));
  bigger.set(array);
  return bigger;
}

/** Strings as an Arrow Utf8 column: their UTF-8 bytes end to end, and where each one ends. */
class TextColumn {
  private bytes = new Utf8Buffer(1 << 16);
  private ends = new Int32Array(1024);
  private count = 0;

  append(value: string): void {
    this.bytes.text(value);
    this.ends = grown(this.ends, this.count + 2);
    this.ends[++this.count] = this.bytes.position;
  }

  finish(): Data<Utf8> {
    const { bytes, position } = this.bytes;
    const data = makeData({ type: new Utf8(), length: this.count, nullCount: 0, valueOffsets: this.ends.slice(0, this.count + 1), data: bytes.subarray(0, position) });
    // The finished column keeps the old buffer; the next one starts in a buffer of its size.
    this.bytes = new Utf8Buffer(bytes.length);
    this.count = 0;
    return data;
  }
}

/**
 * Int64 values kept as little-endian pairs of 32-bit words, with no BigInt per value. The high
 * word is the floor of the quotient, which is also right for negative values.
 */
class Int64Words {
  words = new Int32Array(2048);
  count = 0;

  push(value: number): void {
    this.words = grown(this.words, 2 * this.count + 2);
    this.words[2 * this.count] = value >>> 0;
    this.words[2 * this.count + 1] = Math.floor(value / 0x1_0000_0000);
    this.count++;
  }

  take(): Int32Array {
    const words = this.words.slice(0, 2 * this.count);
    this.count = 0;
    return words;
  }
}

/**
 * Prep rows gathered into Arrow columns in PREP_SCHEMA, row by row, so a row group is held as its
 * column bytes rather than as row objects. A row outside the prep format is a DataError naming the
 * row and the field.
 */
export class PrepBatchBuilder {
  private readonly texts = TEXT_FIELDS.map(() => new TextColumn());
  private readonly meta = new TextColumn();
  private readonly ids = new Int64Words();
  private idEnds = new Int32Array(1024);
  private readonly users = new Int64Words();
  private present = new Uint8Array(128);
  private nulls = 0;
  length = 0;

  append(row: PrepRow): void {
    const field = problem(row);
    if (field)
      throw new DataError(
        `row ${JSON.stringify(row.example_id)}: field '${field}' does not fit the prep row format ` +
          '(strings example_id, task, input, output; integer list anime_ids; integer or null user_id)',
      );
    for (let i = 0; i < TEXT_FIELDS.length; i++) this.texts[i]!.append(row[TEXT_FIELDS[i]!]);
    this.meta.append(JSON.stringify(row.meta ?? {}));
    for (const id of row.anime_ids) this.ids.push(id);
    this.idEnds = grown(this.idEnds, this.length + 2);
    this.idEnds[this.length + 1] = this.ids.count;
    this.present = grown(this.present, (this.length >> 3) + 1);
    if (row.user_id == null) {
      this.nulls++;
      this.users.push(0);
      this.present[this.length >> 3]! &= ~(1 << (this.length & 7));
    } else {
      this.users.push(row.user_id);
      this.present[this.length >> 3]! |= 1 << (this.length & 7);
    }
    this.length++;
  }

  /** The rows appended since the last call, as one record batch; the builder starts empty again. */
  finish(): RecordBatch {
    const length = this.length;
    const idCount = this.ids.count;
    const animeIds = makeData({
      type: new List(ELEMENT),
      length,
      nullCount: 0,
      valueOffsets: this.idEnds.slice(0, length + 1),
      child: makeData({ type: new Int64(), length: idCount, nullCount: 0, data: this.ids.take() }),
    });
    const userIds = makeData({ type: new Int64(), length, nullCount: this.nulls, data: this.users.take(), nullBitmap: this.present.slice(0, (length + 7) >> 3) });
    const children = [...this.texts.map((column) => column.finish()), animeIds, userIds, this.meta.finish()];
    this.length = 0;
    this.nulls = 0;
    return new RecordBatch(PREP_SCHEMA, makeData({ type: new Struct(PREP_SCHEMA.fields), length, nullCount: 0, children }));
  }
}
