import { isEncoded } from '../engine/encoded-batch.ts';
import type { Batch } from '../engine/node.ts';

/** The batch's rows as JSON text, one string a row: decoded from the attached bytes, or JSON.stringify's. */
export function jsonLines(batch: Batch): string[] {
  if (!isEncoded(batch)) return batch.map((row) => JSON.stringify(row));
  const { encoded } = batch;
  const bytes = Buffer.from(encoded.bytes.buffer, encoded.bytes.byteOffset, encoded.bytes.byteLength);
  return Array.from(encoded.ends, (end, i) => bytes.toString('utf8', i === 0 ? 0 : encoded.ends[i - 1]!, end - 1));
}

/** The batch as one chunk of JSON Lines bytes, ready to write. */
export function jsonLinesBytes(batch: Batch): Uint8Array {
  return isEncoded(batch) ? batch.encoded.bytes : Buffer.from(batch.map((row) => JSON.stringify(row) + '\n').join(''));
}
