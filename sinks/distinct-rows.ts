import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { contentJson, rowContent } from '../transforms/prep/row-lines.ts';
import type { PrepExample } from '../transforms/prep/types.ts';

/**
 * Counts distinct rows by the JSON of (task, input, output), hashed on a thread of its own (see
 * distinct-rows-worker.mjs). A batch from prep-shuffle goes over as its encoded bytes (a memory
 * copy, cheaper than hashing here); any other batch as its rows' content text.
 */
export class DistinctRows {
  private readonly worker = new Worker(new URL('./distinct-rows-worker.mjs', import.meta.url));
  private readonly failed: Promise<never>;

  constructor() {
    this.failed = new Promise<never>((_, reject) => {
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`the distinct-row counter stopped (exit code ${code})`)));
    });
    this.failed.catch(() => {});
  }

  add(batch: PrepExample[]): void {
    const content = rowContent(batch);
    this.worker.postMessage(content ? { bytes: content.bytes, spans: content.spans } : { texts: batch.map(contentJson) });
  }

  async count(): Promise<number> {
    this.worker.postMessage('count');
    const [count] = (await Promise.race([once(this.worker, 'message'), this.failed])) as [number];
    return count;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
