import { Worker } from 'node:worker_threads';
import { RecycledBuffers } from '../recycled-buffers.ts';
import { isEncoded } from '../../engine/encoded-batch.ts';
import { contentJson } from '../../transforms/prep/row-lines.ts';
import type { PrepRow } from '../../transforms/prep/prep-row.ts';

/**
 * Counts distinct rows by the JSON of (task, input, output), hashed on a thread of its own (see
 * distinct-rows-worker.mjs). A batch from prep-shuffle goes over as its encoded bytes (a memory
 * copy into a recycled buffer, cheaper than hashing here); any other batch as its rows' content text.
 */
export class DistinctRows {
  private readonly worker = new Worker(new URL('./distinct-rows-worker.mjs', import.meta.url));
  private readonly failed: Promise<never>;
  private readonly buffers = new RecycledBuffers();
  private counted?: (count: number) => void;

  constructor() {
    this.worker.on('message', (reply: { recycled: ArrayBuffer } | number) => {
      if (typeof reply === 'number') this.counted?.(reply);
      else this.buffers.recycle(reply.recycled);
    });
    this.failed = new Promise<never>((_, reject) => {
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`the distinct-row counter stopped (exit code ${code})`)));
    });
    this.failed.catch(() => {});
  }

  add(batch: PrepRow[]): void {
    const spans = isEncoded(batch) ? batch.encoded.content : undefined;
    if (!isEncoded(batch) || !spans) return this.worker.postMessage({ texts: batch.map(contentJson) });
    // Only up to the last row's content: what follows it is not hashed.
    const bytes = this.buffers.copy(batch.encoded.bytes.subarray(0, spans[spans.length - 1]));
    this.worker.postMessage({ bytes, spans }, [bytes.buffer]);
  }

  async count(): Promise<number> {
    const counted = new Promise<number>((resolve) => (this.counted = resolve));
    this.worker.postMessage('count');
    return Promise.race([counted, this.failed]);
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
