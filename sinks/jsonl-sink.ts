import { z } from 'zod';
import { isEncoded } from '../engine/encoded-batch.ts';
import { defineSink, port, rowStats, type Batch } from '../engine/node.ts';
import { outputPath } from '../engine/options.ts';
import { jsonLines, jsonLinesBytes } from './json-lines.ts';
import { writeBatches } from './write-batches.ts';
import { writeInWorker } from './worker-writer.ts';

/**
 * One JSON object per line; data only, so `-` (stdout) can be piped into jq, head or wc. A file
 * is encoded and written by a thread of its own, which the main thread hands each batch's text.
 */
export default defineSink({
  type: 'jsonl-sink',
  kind: 'sink',
  description: 'Writes rows as JSON lines to a file (temporary file, renamed on success) or to stdout with -.',
  options: z.strictObject({
    path: outputPath('output file; - writes to standard output'),
  }),
  inputs: { in: port() },
  stats: rowStats,
  async create(ctx, inputs) {
    const { path } = ctx.options;
    const counter = ctx.progress.counter(path === '-' ? 'stdout' : 'written', { unit: 'rows' });
    if (path === '-') {
      ctx.stats.rows = await writeBatches(inputs.ports.in, process.stdout, (batch) => {
        counter.add(batch.length);
        return jsonLinesBytes(batch);
      });
    } else {
      const file = ctx.output(path);
      const toMessage = (batch: Batch) => (isEncoded(batch) ? batch.encoded.bytes : jsonLines(batch));
      const { rows, digest } = await writeInWorker(
        inputs.ports.in,
        new URL('./jsonl-writer.mjs', import.meta.url),
        { path: file },
        toMessage,
        ctx.signal,
        (n) => counter.add(n),
      );
      ctx.stats.rows = rows;
      // The manifest reads the digest rather than hashing the file again.
      ctx.reportOutput(path, { rows, ...(digest ? { digest } : {}) });
    }
    counter.done();
  },
});
