import { z } from 'zod';
import { DataError } from '../engine/errors.ts';
import { readLineBatches } from '../engine/line-reader.ts';
import { defineSource, rowStats } from '../engine/node.ts';
import { inputPath } from '../engine/options.ts';
import { fromAsync } from '../engine/stream.ts';

const options = z.strictObject({
  path: inputPath('JSON-lines file to read; - reads standard input'),
  read_chunk_bytes: z
    .int()
    .positive()
    .default(1 << 20)
    .describe('bytes per file read (buffer size)'),
});

/** Each non-blank line of a JSON-lines file as one row. */
export default defineSource({
  type: 'jsonl-source',
  kind: 'source',
  description: 'Reads a JSON-lines file (or stdin) into rows; invalid JSON is an error naming file and line.',
  options,
  stats: rowStats,
  create(ctx) {
    const { path, read_chunk_bytes } = ctx.options;
    const batch_size = ctx.pipeline.batchSize;
    const where = path === '-' ? '<stdin>' : path;
    const counter = ctx.progress.counter('read', { unit: 'rows' });
    async function* rows() {
      let count = 0;
      for await (const lines of readLineBatches(path, batch_size, ctx.signal, read_chunk_bytes)) {
        const batch: unknown[] = [];
        for (const line of lines) {
          if (!line.text.trim()) continue;
          try {
            batch.push(JSON.parse(line.text));
          } catch (error) {
            throw new DataError(`invalid JSON (${(error as Error).message}): expected one JSON object per line`, {
              file: where,
              line: line.number,
            });
          }
        }
        count += batch.length;
        counter.add(batch.length);
        if (batch.length) yield batch;
      }
      ctx.stats.rows = count;
      counter.done();
    }
    return fromAsync(rows(), ctx.onClose);
  },
});
