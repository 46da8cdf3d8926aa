import { Worker } from 'node:worker_threads';

export interface FileDigest {
  bytes: number;
  sha256: string;
}

/**
 * Size and SHA-256 of each file, streamed so a multi-gigabyte database is never held in memory, on
 * a thread of their own: hashing the input database (~8 GB at real scale) then overlaps the run
 * instead of holding up the main thread. One thread hashes them all, one after another: a thread
 * is an isolate of its own (~8.5 MB of RSS empty), and the disk reads the files one at a time anyway.
 */
export function fileDigests(files: readonly string[], signal?: AbortSignal): Promise<FileDigest[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./file-digest-worker.mjs', import.meta.url), { workerData: files });
    // A failed or interrupted run must not wait for a multi-gigabyte hash to finish.
    const stop = () => void worker.terminate();
    signal?.addEventListener('abort', stop, { once: true });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      signal?.removeEventListener('abort', stop);
      if (code !== 0) reject(signal?.aborted ? signal.reason : new Error(`hashing ${files.join(', ')} stopped (exit code ${code})`));
    });
  });
}

export const fileDigest = async (file: string, signal?: AbortSignal): Promise<FileDigest> => (await fileDigests([file], signal))[0]!;
