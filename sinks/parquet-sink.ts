import { createWriteStream, type WriteStream } from 'node:fs';
import type parquetjs from '@dsnp/parquetjs';
import { z } from 'zod';
import { DataError } from '../engine/errors.ts';
import { defineSink } from '../engine/node.ts';
import { outputPath } from '../engine/options.ts';
import { forEachBatch } from './for-each-batch.ts';

const COMPRESSIONS = ['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'BROTLI'] as const;
type Compression = (typeof COMPRESSIONS)[number];

/**
 * The prep row as Parquet. `meta` differs by task (A, B and C carry different fields), so it is one
 * JSON text column rather than a struct whose shape would have to be the union of all of them.
 */
function prepRowSchema(parquet: typeof parquetjs, compression: Compression) {
  const text = { type: 'UTF8', compression } as const;
  return new parquet.ParquetSchema({
    example_id: text,
    task: text,
    input: text,
    output: text,
    // parquetjs applies a LIST's compression per leaf, so it goes on the element, not on the list.
    anime_ids: parquet.ParquetFieldBuilder.createListField('INT64', false, { optional: false, compression }),
    user_id: { type: 'INT64', optional: true, compression },
    meta: text,
  });
}

interface PrepRow {
  example_id: string;
  task: string;
  input: string;
  output: string;
  anime_ids: number[];
  user_id: number | null;
  meta: unknown;
}

function toRecord(row: PrepRow): Record<string, unknown> {
  const problem =
    (['example_id', 'task', 'input', 'output'] as const).find((key) => typeof row[key] !== 'string') ??
    (!Array.isArray(row.anime_ids) || !row.anime_ids.every(Number.isSafeInteger) ? 'anime_ids' : undefined) ??
    (row.user_id != null && !Number.isSafeInteger(row.user_id) ? 'user_id' : undefined);
  if (problem)
    throw new DataError(
      `row ${JSON.stringify(row.example_id)}: field '${problem}' does not fit the prep row format ` +
        '(strings example_id, task, input, output; integer list anime_ids; integer or null user_id)',
    );
  return {
    example_id: row.example_id,
    task: row.task,
    input: row.input,
    output: row.output,
    anime_ids: { list: row.anime_ids.map((element) => ({ element })) },
    user_id: row.user_id ?? null,
    meta: JSON.stringify(row.meta ?? {}),
  };
}

/**
 * The file as parquetjs sees it. parquetjs leaves some writes unawaited (the header, page indexes),
 * so a failed write would surface as an unhandled rejection; here it never fails a write callback,
 * and the sink checks `error` at each step it does await instead. parquetjs only calls the
 * callback forms of write and end, hence the cast where it is handed over.
 */
class FileTarget {
  error: Error | undefined;

  constructor(private readonly out: WriteStream) {
    out.on('error', (error) => (this.error ??= error));
  }

  write(buf: Buffer, done: (error?: Error | null) => void): void {
    if (this.error) return done();
    this.out.write(buf, (error) => {
      if (error) this.error ??= error;
      done();
    });
  }

  end(done: (error?: Error | null) => void): void {
    this.out.end(() => done());
  }

  check(): void {
    if (this.error) throw this.error;
  }
}

/** Prep rows as one Parquet file, for readers such as pandas, DuckDB or Hugging Face datasets. */
export default defineSink({
  type: 'parquet-sink',
  kind: 'sink',
  description: 'Writes prep rows (example_id, task, input, output, anime_ids, user_id, meta) to a Parquet file.',
  options: z.strictObject({
    path: outputPath('Parquet file to write (temporary file, renamed on success)'),
    row_group_size: z.coerce.number().int().positive().default(16384).describe('rows per row group (rows held in memory before a write)'),
    compression: z.enum(COMPRESSIONS).default('SNAPPY').describe('codec for every column'),
  }),
  inputs: { ports: ['in'] },
  async create(ctx, inputs) {
    const { path, row_group_size, compression } = ctx.options;
    const out = createWriteStream(ctx.output(path));
    ctx.onClose(() => void out.destroy());
    const target = new FileTarget(out);
    // Loaded here, not at the top: parquetjs (with the AWS SDK it imports) costs every run ~0.1 s of startup.
    const { default: parquet } = await import('@dsnp/parquetjs');
    const writer = await parquet.ParquetWriter.openStream(prepRowSchema(parquet, compression), target as unknown as WriteStream, { rowGroupSize: row_group_size });
    const counter = ctx.progress.counter('written', { unit: 'rows' });
    const rows = await forEachBatch(inputs.ports.in!, async (batch) => {
      ctx.signal.throwIfAborted();
      // One at a time: appends that overlap a row-group flush are written twice.
      for (const row of batch as PrepRow[]) await writer.appendRow(toRecord(row));
      target.check();
      counter.add(batch.length);
    });
    // Resolves once the footer is flushed, so the manifest hashes the final bytes.
    await writer.close();
    target.check();
    ctx.stats.rows = rows;
    counter.done();
  },
});
