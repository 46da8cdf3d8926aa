// The JSONL sink's writer thread, plain JavaScript so it starts without the TypeScript loader.
// Protocol (worker-writer.ts): one batch's JSON lines, either as UTF-8 bytes ready to write or as
// an array of strings to encode here, answered once on disk with { written: buffer } (the bytes'
// buffer, transferred back for reuse) or 'written'; 'close' closes the file and is answered with
// { closed: digest }: the size and SHA-256 of what was written, hashed here as it went so the
// manifest need not read the file again.
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const fd = openSync(workerData.path, 'w');
const sha256 = createHash('sha256');
let bytes = 0;

function write(data, length) {
  for (let at = 0; at < length;) at += writeSync(fd, data, at, length - at);
  sha256.update(length === data.length ? data : data.subarray(0, length));
  bytes += length;
}

// Lines are encoded into one reused buffer, so a batch makes no megabyte-sized garbage.
let buffer = Buffer.allocUnsafe(1 << 22);
parentPort.on('message', (message) => {
  if (message === 'close') {
    closeSync(fd);
    parentPort.postMessage({ closed: { bytes, sha256: sha256.digest('hex') } });
    return;
  }
  if (message instanceof Uint8Array) {
    write(message, message.length);
    parentPort.postMessage({ written: message.buffer }, [message.buffer]);
    return;
  }
  let used = 0;
  for (const line of message) {
    const need = used + Buffer.byteLength(line) + 1;
    if (need > buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, buffer.length * 2));
      buffer.copy(grown, 0, 0, used);
      buffer = grown;
    }
    used += buffer.write(line, used);
    buffer[used++] = 10;
  }
  write(buffer, used);
  parentPort.postMessage('written');
});
