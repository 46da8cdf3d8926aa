import { z } from 'zod';
import { defineSink } from '../engine/node.ts';
import { outputPath } from '../engine/options.ts';
import { workerScript } from '../engine/worker-script.ts';
import type { ParquetWriterData } from './parquet-writer.ts';
import { writeInWorker } from './worker-writer.ts';

const COMPRESSIONS = ['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'BROTLI'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

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
    // Rows travel by structured clone, plain data as prep rows are.
    const { rows } = await writeInWorker(inputs.ports.in!, workerScript(new URL('./parquet-writer.ts', import.meta.url)), data, (batch) => batch, ctx.signal, (n) => counter.add(n));
    ctx.stats.rows = rows;
    counter.done();
  },
});
