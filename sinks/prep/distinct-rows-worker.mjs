// The summary's distinct-row counter, on a thread of its own so hashing ~400k rows of content
// overlaps making them. Plain JavaScript so it starts without the TypeScript loader.
// Protocol (distinct-rows.ts): { bytes, spans } (row i's content is bytes[spans[2i], spans[2i + 1]),
// answered with { recycled: buffer }, the bytes' buffer transferred back for reuse) or { texts }
// adds rows; 'count' is answered with the number of distinct rows seen.
import { hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

// The first 64 bits of each row's SHA-1, 8 bytes a row, counted once at the end by sorting. Two
// different rows share 64 bits with probability ~n²/2^65: about 4e-9 for 400k rows.
let values = new BigUint64Array(1 << 16);
let size = 0;

function add(content) {
  if (size === values.length) {
    const grown = new BigUint64Array(values.length * 2);
    grown.set(values);
    values = grown;
  }
  values[size++] = hash('sha1', content, 'buffer').readBigUInt64LE(0);
}

parentPort.on('message', (message) => {
  if (message === 'count') {
    const sorted = values.subarray(0, size).sort();
    let count = 0;
    for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) count++;
    parentPort.postMessage(count);
  } else if (message.texts) for (const text of message.texts) add(text);
  else {
    for (let i = 0; i < message.spans.length; i += 2)
      add(message.bytes.subarray(message.spans[i], message.spans[i + 1]));
    parentPort.postMessage({ recycled: message.bytes.buffer }, [message.bytes.buffer]);
  }
});
