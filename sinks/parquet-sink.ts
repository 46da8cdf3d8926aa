import { z } from 'zod';
import { defineSink } from '../engine/node.ts';
import { outputPath } from '../engine/options.ts';
import { workerScript } from '../engine/worker-script.ts';
import type { ParquetWriterData } from './parquet-writer.ts';
import { jsonLinesBytes } from './json-lines.ts';
import { writeInWorker } from './worker-writer.ts';

const COMPRESSIONS = ['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'BROTLI', 'ZSTD'] as const;
export type CompressionName = (typeof COMPRESSIONS)[number];

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
    const counter = ctx.progress.counter('written', { unit: 'rows' });
    const data: ParquetWriterData = { path: ctx.output(path), rowGroupSize: row_group_size, compression };
    // Rows travel as their JSON Lines: producers such as prep-shuffle have them as bytes already,
    // which cost the main thread a copy, where cloning the rows' strings cost it ~4 µs a row.
    const script = workerScript(new URL('./parquet-writer.ts', import.meta.url));
    const { rows } = await writeInWorker(inputs.ports.in!, script, data, jsonLinesBytes, ctx.signal, (n) => counter.add(n));
    ctx.stats.rows = rows;
    counter.done();
  },
});
