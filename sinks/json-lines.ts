import type { Batch } from '../engine/node.ts';

/** What JSON.stringify escapes in a string: control characters, quote, backslash, and (as \\uXXXX) surrogates, of which only lone ones need it. */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/** What JSON.stringify(text) puts between its quotes: `text` itself when nothing needs escaping (most texts), with no escaping pass. */
export const jsonContent = (text: string): string => (NEEDS_ESCAPE.test(text) ? JSON.stringify(text).slice(1, -1) : text);

/** JSON.stringify(text). */
export const jsonString = (text: string): string => `"${jsonContent(text)}"`;

/** A batch's JSON Lines as UTF-8: line i ends (after its '\n') at ends[i]. */
export interface EncodedLines {
  bytes: Uint8Array;
  ends: Uint32Array;
}

/**
 * A producer that writes its rows' JSON Lines itself (bytes assembled from pieces already in JSON
 * form, cheaper than serializing the rows) attaches them to the batch array under this symbol:
 * exactly what JSON.stringify gives for each row, one '\n' after each. Sinks that write JSON Lines
 * use them. They belong to that array only (filtering or mapping makes a new array without them),
 * and stay valid because batches are never changed in place: forks share them.
 */
const ENCODED_LINES = Symbol('animind.encodedLines');

export function attachEncodedLines(batch: Batch, lines: EncodedLines): void {
  Object.defineProperty(batch, ENCODED_LINES, { value: lines });
}

export function encodedLines(batch: Batch): EncodedLines | undefined {
  return (batch as { [ENCODED_LINES]?: EncodedLines })[ENCODED_LINES];
}

/** The batch's rows as JSON text, one string a row: decoded from the attached bytes, or JSON.stringify's. */
export function jsonLines(batch: Batch): string[] {
  const encoded = encodedLines(batch);
  if (!encoded) return batch.map((row) => JSON.stringify(row));
  const bytes = Buffer.from(encoded.bytes.buffer, encoded.bytes.byteOffset, encoded.bytes.byteLength);
  return Array.from(encoded.ends, (end, i) => bytes.toString('utf8', i === 0 ? 0 : encoded.ends[i - 1]!, end - 1));
}

/** The batch as one chunk of JSON Lines bytes, ready to write. */
export function jsonLinesBytes(batch: Batch): Uint8Array {
  return encodedLines(batch)?.bytes ?? Buffer.from(batch.map((row) => JSON.stringify(row) + '\n').join(''));
}
