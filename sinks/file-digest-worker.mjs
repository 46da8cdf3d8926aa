// Plain JavaScript so the thread starts without the TypeScript loader: it only reads and hashes.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const hash = createHash('sha256');
let bytes = 0;
for await (const chunk of createReadStream(workerData, { highWaterMark: 1 << 20 })) {
  bytes += chunk.length;
  hash.update(chunk);
}
parentPort.postMessage({ bytes, sha256: hash.digest('hex') });
