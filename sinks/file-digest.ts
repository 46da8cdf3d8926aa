import { Worker } from 'node:worker_threads';
import { fileStamp, type DigestCache, type FileDigest } from './digest-cache.ts';

export type { FileDigest };

/**
 * Size and SHA-256 of each file, streamed so a multi-gigabyte database is never held in memory, on
 * a thread of their own: hashing the input database (~8 GB at real scale) then overlaps the run
 * instead of holding up the main thread. One thread hashes them all, one after another: a thread
 * is an isolate of its own (~8.5 MB of RSS empty), and the disk reads the files one at a time anyway.
 * With `cache`, a file unchanged since a digest was kept is not read at all (digest-cache.ts).
 */
export async function fileDigests(
  files: readonly string[],
  signal?: AbortSignal,
  cache?: DigestCache,
): Promise<FileDigest[]> {
  const stamps = cache ? files.map(fileStamp) : [];
  const digests = files.map((file, i) => cache?.get(file, stamps[i]!.stamp));
  const missing = files.flatMap((file, i) => (digests[i] ? [] : [i]));
  if (missing.length) {
    const hashed = await hashOnThread(
      missing.map((i) => files[i]!),
      signal,
    );
    missing.forEach((i, k) => (digests[i] = hashed[k]));
    cache?.set(
      missing.flatMap((i, k) =>
        stamps[i]!.settled ? [{ file: files[i]!, stamp: stamps[i]!.stamp, digest: hashed[k]! }] : [],
      ),
    );
  }
  return digests as FileDigest[];
}

function hashOnThread(files: readonly string[], signal?: AbortSignal): Promise<FileDigest[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./file-digest-worker.mjs', import.meta.url), { workerData: files });
    // A failed or interrupted run must not wait for a multi-gigabyte hash to finish.
    const stop = () => void worker.terminate();
    signal?.addEventListener('abort', stop, { once: true });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      signal?.removeEventListener('abort', stop);
      if (code !== 0)
        reject(signal?.aborted ? signal.reason : new Error(`hashing ${files.join(', ')} stopped (exit code ${code})`));
    });
  });
}

export const fileDigest = async (file: string, signal?: AbortSignal, cache?: DigestCache): Promise<FileDigest> =>
  (await fileDigests([file], signal, cache))[0]!;
