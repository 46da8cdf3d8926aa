import type { Batch } from '../engine/node.ts';
import { _, type Stream } from '../engine/stream.ts';

/**
 * Pulls one batch, awaits `handle` on it, then pulls the next: a sink with asynchronous writes
 * keeps backpressure and its writes in order. Resolves with the row count at the end of the stream.
 */
export function forEachBatch(input: Stream<Batch>, handle: (batch: Batch) => Promise<void> | void): Promise<number> {
  return new Promise((resolve, reject) => {
    let rows = 0;
    const pull = () => {
      input.pull((error, batch) => {
        if (error) return reject(error);
        if (_.isNil(batch)) return resolve(rows);
        rows += batch.length;
        Promise.resolve()
          .then(() => handle(batch))
          .then(() => setImmediate(pull), reject);
      });
    };
    pull();
  });
}
