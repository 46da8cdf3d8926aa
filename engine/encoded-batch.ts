/** A batch's rows as JSON Lines in UTF-8: line i ends (after its '\n') at ends[i]. */
export interface EncodedLines {
  bytes: Uint8Array;
  ends: Uint32Array;
  /**
   * Optional: the byte span of each line that tells its row's content apart (start at [2i], end
   * at [2i + 1]), for sinks that compare rows without decoding them (prep's distinct share).
   */
  content?: Uint32Array;
}

/**
 * A batch whose producer wrote its rows' JSON Lines itself (assembled from pieces already in JSON
 * form, cheaper than serializing the rows): exactly what JSON.stringify gives for each row, one
 * '\n' after each. Sinks that write JSON Lines use them. They belong to this array only (filtering
 * or mapping makes a plain array), and stay valid because batches are never changed in place.
 */
export type EncodedBatch<T> = T[] & { readonly encoded: EncodedLines };

export function encodedBatch<T>(rows: T[], encoded: EncodedLines): EncodedBatch<T> {
  // Not enumerable, so the batch still looks like its rows to anything that walks it.
  return Object.defineProperty(rows, 'encoded', { value: encoded }) as EncodedBatch<T>;
}

export const isEncoded = <T>(batch: readonly T[]): batch is EncodedBatch<T> =>
  (batch as Partial<EncodedBatch<T>>).encoded !== undefined;

/**
 * What JSON.stringify escapes in a string: control characters, quote,
 * backslash, and (as \\uXXXX) surrogates, of which only lone ones need it.
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON escapes
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/**
 * What JSON.stringify(text) puts between its quotes: `text` itself
 * when nothing needs escaping (most texts), with no escaping pass.
 */
export const jsonContent = (text: string): string =>
  NEEDS_ESCAPE.test(text) ? JSON.stringify(text).slice(1, -1) : text;

/** JSON.stringify(text). */
export const jsonString = (text: string): string => `"${jsonContent(text)}"`;
