import type { EncodedLines } from '../../engine/encoded-batch.ts';
import { Utf8Buffer } from '../../engine/utf8-buffer.ts';
import type { PrepRow, Task } from './prep-row.ts';

/**
 * Writes a batch of prep rows straight into UTF-8 JSON Lines bytes: the text of 400k rows (most of
 * it Task B watch sequences, kilobytes a row) never becomes V8 strings, which the young generation
 * would promote and copy, and the writer thread gets the bytes as they are (a plain memory copy).
 * A batch's Task B rows decode their `input` from these bytes only if a sink reads it. The bytes
 * are an ordinary ArrayBuffer, not a SharedArrayBuffer: measured at 10M rows, V8 freed shared
 * ones only at full collections, so ~350 MB of written batches piled up; ordinary ones it frees
 * as it goes (peak RSS 900 MB → 575 MB for the cost of the copies).
 *
 * Each line also records its content span: the bytes of `"task":…,"input":…,"output":…`, which
 * is JSON of (task, input, output) and so identifies a row's content (EncodedLines' `content`).
 */
export class RowLines extends Utf8Buffer {
  private readonly ends: number[] = [];
  private readonly spans: number[] = [];

  constructor(capacity = 1 << 20) {
    super(capacity);
  }

  /** The start of an example's JSON line, up to the task field. */
  head(example_id: string): void {
    this.ascii(`{"example_id":"${example_id}",`);
  }

  contentStart(): void {
    this.spans.push(this.size);
  }

  contentEnd(): void {
    this.spans.push(this.size);
  }

  endLine(): void {
    this.byte(10);
    this.ends.push(this.size);
  }

  finish(): EncodedLines {
    return {
      bytes: this.buffer.subarray(0, this.size),
      ends: Uint32Array.from(this.ends),
      content: Uint32Array.from(this.spans),
    };
  }
}

/** A row's content as the content spans hold it, for rows that come with no spans. */
export const contentJson = (row: { task: string; input: string; output: string }): string =>
  JSON.stringify({ task: row.task, input: row.input, output: row.output }).slice(1, -1);

/** Where an EncodedExample's input is: JSON string content in `source`'s bytes at [start, end). */
export interface InputBytes {
  source: RowLines;
  start: number;
  end: number;
  /** Whether the content holds JSON escapes (else the bytes are the text itself). */
  escaped: boolean;
}

/** `input` of an EncodedExample: decoded once on first read, then an ordinary data property. */
const INPUT: PropertyDescriptor = {
  get(this: EncodedExample): string {
    const input = EncodedExample.decode(this);
    Object.defineProperty(this, 'input', { value: input, writable: true, enumerable: true, configurable: true });
    return input;
  },
  set(this: EncodedExample, value: string) {
    Object.defineProperty(this, 'input', { value, writable: true, enumerable: true, configurable: true });
  },
  enumerable: true,
  configurable: true,
};

/**
 * An example whose input stays in the encoded lines until read. `input` is an own enumerable
 * property like the others (an accessor until first read), so JSON.stringify, spreading and
 * structured cloning all see the text, in the row format's field order.
 */
export class EncodedExample implements PrepRow {
  declare example_id: string;
  declare task: Task;
  declare input: string;
  declare output: string;
  declare anime_ids: number[];
  declare user_id: number | null;
  declare meta: Record<string, unknown>;
  readonly #bytes: InputBytes;

  constructor(
    example_id: string,
    task: Task,
    bytes: InputBytes,
    output: string,
    anime_ids: number[],
    user_id: number | null,
    meta: Record<string, unknown>,
  ) {
    this.#bytes = bytes;
    this.example_id = example_id;
    this.task = task;
    Object.defineProperty(this, 'input', INPUT);
    this.output = output;
    this.anime_ids = anime_ids;
    this.user_id = user_id;
    this.meta = meta;
  }

  static decode(example: EncodedExample): string {
    const { source, start, end, escaped } = example.#bytes;
    const text = source.bytes.toString('utf8', start, end);
    return escaped ? (JSON.parse(`"${text}"`) as string) : text;
  }
}
