import type { Writable } from 'node:stream';
import { OutputClosedError, writeFailure } from '../engine/errors.ts';
import type { Batch } from '../engine/node.ts';
import { _, type Stream } from '../engine/stream.ts';

/**
 * Pulls one batch at a time, writes it as one chunk and waits for 'drain' when the writer is
 * full, so a slow disk or a slow reader of stdout holds back every source. Resolves with the
 * row count once a file is flushed and closed (stdout is left open).
 */
export function writeBatches(
  input: Stream<Batch>,
  out: Writable,
  render: (batch: Batch) => string | Uint8Array,
): Promise<number> {
  const isStdout = out === process.stdout;
  return new Promise((resolve, reject) => {
    let rows = 0;
    let settled = false;
    const finish = (error?: unknown) => {
      if (settled) return;
      settled = true;
      out.off('error', onError);
      // A stream destroyed by a cancelled run may still report the write it refused; by now that is moot.
      out.on('error', () => {});
      if (error) reject(error);
      else resolve(rows);
    };
    // A reader that went away (`| head`) ends the run quietly; a full device names standard output, not a write call.
    const onError = (error: NodeJS.ErrnoException) =>
      finish(
        error.code === 'EPIPE' ? new OutputClosedError() : isStdout ? writeFailure(error, ['standard output']) : error,
      );
    out.on('error', onError);
    const pull = () => {
      input.pull((error, batch) => {
        if (settled) return;
        if (error) return finish(error);
        if (_.isNil(batch)) {
          if (isStdout) return finish();
          out.end(() => finish());
          return;
        }
        rows += batch.length;
        if (batch.length === 0 || out.write(render(batch))) setImmediate(pull);
        else out.once('drain', pull);
      });
    };
    pull();
  });
}
