import { Worker } from 'node:worker_threads';
import type { Batch } from '../engine/node.ts';
import type { Stream } from '../engine/stream.ts';
import type { FileDigest } from './file-digest.ts';
import { forEachBatch } from './for-each-batch.ts';
import { RecycledBuffers } from './recycled-buffers.ts';

export interface Written {
  rows: number;
  /** Size and SHA-256 of the file, from writers that hash what they write. */
  digest?: FileDigest;
}

/**
 * How many batches may be on their way to or inside the writer
 * thread: enough to keep it busy, few enough to bound memory.
 */
const AHEAD = 2;

/**
 * Streams batches to a writer thread as `toMessage(batch)` (see jsonl-writer.mjs for the protocol),
 * so encoding and writing happen off the main thread. Bytes travel in recycled buffers, which the
 * thread hands back with its acknowledgement. Backpressure holds: at most AHEAD batches are sent
 * before the thread acknowledges one. Resolves with the row count (and the file's digest,
 * when the thread reports one) once the thread has closed its file; the run's abort signal stops
 * the thread.
 */
export function writeInWorker(
  input: Stream<Batch>,
  script: URL,
  workerData: unknown,
  toMessage: (batch: Batch) => unknown,
  signal: AbortSignal,
  onWritten: (rows: number) => void,
): Promise<Written> {
  const worker = new Worker(script, { workerData });
  const stop = () => void worker.terminate();
  signal.addEventListener('abort', stop, { once: true });
  let failed: (error: Error) => void = () => {};
  const failure = new Promise<never>((_, reject) => (failed = reject));
  failure.catch(() => {});
  worker.on('error', (error) => failed(error));
  worker.on(
    'exit',
    (code) =>
      code === 0 || failed(signal.aborted ? signal.reason : new Error(`the writer thread stopped (exit code ${code})`)),
  );
  const sizes: number[] = [];
  const buffers = new RecycledBuffers();
  let acknowledged: (() => void) | undefined;
  let finished: ((digest?: FileDigest) => void) | undefined;
  worker.on('message', (reply: 'written' | { written: ArrayBuffer } | 'closed' | { closed: FileDigest }) => {
    if (reply === 'closed') return finished?.();
    if (typeof reply === 'object' && 'closed' in reply) return finished?.(reply.closed);
    if (typeof reply === 'object') buffers.recycle(reply.written);
    onWritten(sizes.shift()!);
    acknowledged?.();
  });
  const send = async (batch: Batch) => {
    if (sizes.length >= AHEAD) await Promise.race([new Promise<void>((resolve) => (acknowledged = resolve)), failure]);
    sizes.push(batch.length);
    const message = toMessage(batch);
    if (message instanceof Uint8Array) {
      const bytes = buffers.copy(message);
      worker.postMessage(bytes, [bytes.buffer]);
    } else worker.postMessage(message);
  };
  return Promise.race([
    forEachBatch(input, send).then(async (rows) => {
      const closed = new Promise<FileDigest | undefined>((resolve) => (finished = resolve));
      worker.postMessage('close');
      const digest = await closed;
      return digest ? { rows, digest } : { rows };
    }),
    failure,
  ]).finally(() => {
    signal.removeEventListener('abort', stop);
    void worker.terminate();
  });
}
