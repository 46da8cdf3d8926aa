import { z } from 'zod';
import { columnsSchema } from '../engine/columns.ts';
import { ConfigError } from '../engine/errors.ts';
import { defineSink, port, rowStats } from '../engine/node.ts';
import { outputPath } from '../engine/options.ts';
import { workerScript } from '../engine/worker-script.ts';
import type { ParquetWriterData } from './parquet-writer.ts';
import { COMPRESSIONS } from './parquet-compression.ts';
import { jsonLinesBytes } from './json-lines.ts';
import { writeInWorker } from './worker-writer.ts';

/**
 * Rows as one Parquet file, for readers such as pandas, DuckDB or Hugging Face datasets. The
 * columns are those the input's producer declares (prep-shuffle declares the prep row), or the
 * `columns` option.
 */
export default defineSink({
  type: 'parquet-sink',
  kind: 'sink',
  description:
    "Writes rows to a Parquet file, in the columns its input's producer declares or the columns option gives.",
  options: z.strictObject({
    path: outputPath('Parquet file to write (temporary file, renamed on success)'),
    row_group_size: z
      .int()
      .positive()
      .default(16384)
      .describe('rows per row group (rows held in memory before a write)'),
    compression: z.enum(COMPRESSIONS).default('SNAPPY').describe('codec for every column'),
    columns: columnsSchema
      .optional()
      .describe('column: { type: string|int64|int64[]|json, nullable, dictionary }; default: what the input declares'),
  }),
  inputs: { in: port() },
  stats: rowStats,
  async create(ctx, inputs) {
    const { path, row_group_size, compression } = ctx.options;
    const columns = ctx.options.columns ?? inputs.columns.in;
    if (!columns)
      throw new ConfigError(
        "option 'columns': its input declares no columns, so they must be given ({ name: { type } })",
      );
    const counter = ctx.progress.counter('written', { unit: 'rows' });
    const data: ParquetWriterData = { path: ctx.output(path), rowGroupSize: row_group_size, compression, columns };
    // Rows travel as their JSON Lines: producers such as prep-shuffle have them as bytes already,
    // which cost the main thread a copy, where cloning the rows' strings cost it ~4 µs a row.
    const script = workerScript(new URL('./parquet-writer.ts', import.meta.url));
    const { rows } = await writeInWorker(inputs.ports.in, script, data, jsonLinesBytes, ctx.signal, (n) =>
      counter.add(n),
    );
    ctx.stats.rows = rows;
    ctx.reportOutput(path, { rows });
    counter.done();
  },
});
