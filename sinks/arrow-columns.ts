import {
  Field,
  Int64,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  type Data,
  type DataType,
} from 'apache-arrow';
import type { Column, Columns } from '../engine/columns.ts';
import { DataError } from '../engine/errors.ts';
import { Utf8Buffer } from '../engine/utf8-buffer.ts';

function grown<T extends Int32Array | Uint8Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  const bigger = new (array.constructor as new (length: number) => T)(Math.max(needed, array.length * 2));
  bigger.set(array);
  return bigger;
}

/** Which rows hold a value: Arrow's validity bitmap, one bit a row. */
class Validity {
  private bits = new Uint8Array(128);
  nulls = 0;

  set(row: number, present: boolean): void {
    this.bits = grown(this.bits, (row >> 3) + 1);
    if (present) this.bits[row >> 3]! |= 1 << (row & 7);
    else {
      this.nulls++;
      this.bits[row >> 3]! &= ~(1 << (row & 7));
    }
  }

  take(length: number): { nullCount: number; nullBitmap?: Uint8Array } {
    const taken = this.nulls
      ? { nullCount: this.nulls, nullBitmap: this.bits.slice(0, (length + 7) >> 3) }
      : { nullCount: 0 };
    this.nulls = 0;
    return taken;
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

interface ColumnBuilder {
  readonly type: DataType;
  /** False when the value does not fit the column. */
  append(value: unknown, row: number): boolean;
  finish(length: number): Data;
}

/** Strings as an Arrow Utf8 column: their UTF-8 bytes end to end, and where each one ends. */
class TextColumn implements ColumnBuilder {
  readonly type = new Utf8();
  private bytes = new Utf8Buffer(1 << 16);
  private ends = new Int32Array(1024);
  private readonly validity = new Validity();

  constructor(
    private readonly nullable: boolean,
    private readonly toText: (value: unknown) => string | undefined,
  ) {}

  append(value: unknown, row: number): boolean {
    const text = value == null && this.nullable ? '' : this.toText(value);
    if (text === undefined) return false;
    if (this.nullable) this.validity.set(row, value != null);
    this.bytes.text(text);
    this.ends = grown(this.ends, row + 2);
    this.ends[row + 1] = this.bytes.position;
    return true;
  }

  finish(length: number): Data<Utf8> {
    const { bytes, position } = this.bytes;
    const data = makeData({
      type: this.type,
      length,
      ...this.validity.take(length),
      valueOffsets: this.ends.slice(0, length + 1),
      data: bytes.subarray(0, position),
    });
    // The finished column keeps the old buffer; the next one starts in a buffer of its size.
    this.bytes = new Utf8Buffer(bytes.length);
    return data;
  }
}

class IntColumn implements ColumnBuilder {
  readonly type = new Int64();
  private readonly values = new Int64Words();
  private readonly validity = new Validity();

  constructor(private readonly nullable: boolean) {}

  append(value: unknown, row: number): boolean {
    if (value == null && this.nullable) {
      this.validity.set(row, false);
      this.values.push(0);
      return true;
    }
    if (!Number.isSafeInteger(value)) return false;
    if (this.nullable) this.validity.set(row, true);
    this.values.push(value as number);
    return true;
  }

  finish(length: number): Data<Int64> {
    return makeData({ type: this.type, length, ...this.validity.take(length), data: this.values.take() });
  }
}

const ELEMENT = new Field('element', new Int64(), false);

class IntListColumn implements ColumnBuilder {
  readonly type = new List(ELEMENT);
  private readonly values = new Int64Words();
  private ends = new Int32Array(1024);
  private readonly validity = new Validity();

  constructor(private readonly nullable: boolean) {}

  append(value: unknown, row: number): boolean {
    const list = value == null && this.nullable ? [] : value;
    if (!Array.isArray(list) || !list.every(Number.isSafeInteger)) return false;
    if (this.nullable) this.validity.set(row, value != null);
    for (const id of list as number[]) this.values.push(id);
    this.ends = grown(this.ends, row + 2);
    this.ends[row + 1] = this.values.count;
    return true;
  }

  finish(length: number): Data<List<Int64>> {
    const count = this.values.count;
    const child = makeData({ type: new Int64(), length: count, nullCount: 0, data: this.values.take() });
    return makeData({
      type: this.type,
      length,
      ...this.validity.take(length),
      valueOffsets: this.ends.slice(0, length + 1),
      child,
    });
  }
}

function builder(column: Column): ColumnBuilder {
  const nullable = column.nullable ?? false;
  switch (column.type) {
    case 'string':
      return new TextColumn(nullable, (value) => (typeof value === 'string' ? value : undefined));
    case 'json':
      return new TextColumn(nullable, (value) => JSON.stringify(value ?? {}));
    case 'int64':
      return new IntColumn(nullable);
    case 'int64[]':
      return new IntListColumn(nullable);
  }
}

const EXPECTED = {
  string: 'a string',
  json: 'any JSON value',
  int64: 'a safe integer',
  'int64[]': 'a list of safe integers',
};

/** The Arrow (and so Parquet) schema of a row layout. */
export function arrowSchema(columns: Columns): Schema {
  return new Schema(
    Object.entries(columns).map(([name, column]) => new Field(name, builder(column).type, column.nullable ?? false)),
  );
}

/**
 * Rows gathered into Arrow columns of a declared layout, row by row, so a row group is held as
 * its column bytes rather than as row objects. A value that does not fit its column is a
 * DataError naming the row and the column.
 */
export class ColumnarBatchBuilder {
  readonly schema: Schema;
  private readonly names: string[];
  private readonly builders: ColumnBuilder[];
  private readonly kinds: Column[];
  length = 0;
  /** Rows appended over the builder's life, for messages. */
  private seen = 0;

  constructor(columns: Columns) {
    this.schema = arrowSchema(columns);
    this.names = Object.keys(columns);
    this.kinds = Object.values(columns);
    this.builders = this.kinds.map(builder);
  }

  append(row: Record<string, unknown>): void {
    this.seen++;
    for (let i = 0; i < this.builders.length; i++) {
      if (this.builders[i]!.append(row[this.names[i]!], this.length)) continue;
      const { type, nullable } = this.kinds[i]!;
      throw new DataError(
        `row ${this.seen}: column '${this.names[i]}': expected ` +
          `${EXPECTED[type]}${nullable ? ' or null' : ''}, got ${JSON.stringify(row[this.names[i]!]) ?? 'nothing'}`,
      );
    }
    this.length++;
  }

  /** The rows appended since the last call, as one record batch; the builder starts empty again. */
  finish(): RecordBatch {
    const length = this.length;
    const children = this.builders.map((column) => column.finish(length));
    this.length = 0;
    return new RecordBatch(
      this.schema,
      makeData({ type: new Struct(this.schema.fields), length, nullCount: 0, children }),
    );
  }
}
