import { createWriteStream } from 'node:fs';
import { z } from 'zod';
import { defineSink } from '../engine/node.ts';
import { outputPath } from '../engine/options.ts';
import { writeBatches } from './write-batches.ts';

/** One JSON object per line; data only, so `-` (stdout) can be piped into jq, head or wc. */
export default defineSink({
  type: 'jsonl-sink',
  kind: 'sink',
  description: 'Writes rows as JSON lines to a file (temporary file, renamed on success) or to stdout with -.',
  options: z.strictObject({
    path: outputPath('output file; - writes to standard output'),
  }),
  inputs: { ports: ['in'] },
  async create(ctx, inputs) {
    const { path } = ctx.options;
    const out = path === '-' ? process.stdout : createWriteStream(ctx.output(path));
    if (out !== process.stdout) ctx.onClose(() => void out.destroy());
    const counter = ctx.progress.counter(path === '-' ? 'stdout' : 'written', { unit: 'rows' });
    const rows = await writeBatches(inputs.ports.in!, out, (batch) => {
      let text = '';
      for (const row of batch) text += JSON.stringify(row) + '\n';
      counter.add(batch.length);
      return text;
    });
    ctx.stats.rows = rows;
    counter.done();
  },
});
