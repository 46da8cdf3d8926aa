// Plain JavaScript so the thread starts without the TypeScript loader: it only reads and hashes.
// One buffer is read into again and again: a read stream makes a fresh megabyte per chunk, which
// this thread's few collections let pile up (~30 MB of peak RSS on a 770 MB database).
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const buffer = Buffer.allocUnsafe(1 << 20);

function digest(file) {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  let bytes = 0;
  try {
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; bytes += n) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return { bytes, sha256: hash.digest('hex') };
}

parentPort.postMessage(workerData.map(digest));
