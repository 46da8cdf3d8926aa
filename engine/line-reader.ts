import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

export interface Line {
  /** 1-based line number in the file, for error messages. */
  number: number;
  text: string;
}

/**
 * Yields a file's lines in batches (`-` reads standard input). Splitting chunks by hand keeps
 * one allocation per line and gives exact line numbers, which a JSON-lines parser would lose.
 * A UTF-8 byte-order mark that starts the file (as some Windows editors write) is skipped; one
 * anywhere else stays in its line.
 */
export async function* readLineBatches(
  file: string,
  batchSize: number,
  signal?: AbortSignal,
  chunkBytes = 1 << 20,
): AsyncGenerator<Line[]> {
  const input: Readable =
    file === '-' ? process.stdin : createReadStream(file, { encoding: 'utf8', highWaterMark: chunkBytes });
  if (file === '-') input.setEncoding('utf8');
  let rest = '';
  let number = 0;
  let batch: Line[] = [];
  let atStart = true;
  try {
    for await (const chunk of input as AsyncIterable<string>) {
      // The abort's reason, never an early end: a caller would take a cut-off file for a whole one.
      signal?.throwIfAborted();
      let text = rest + chunk;
      if (atStart && text.length) {
        atStart = false;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      let start = 0;
      for (let end = text.indexOf('\n', start); end !== -1; end = text.indexOf('\n', start)) {
        batch.push({ number: ++number, text: text.slice(start, end) });
        start = end + 1;
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      rest = text.slice(start);
    }
    signal?.throwIfAborted();
    if (rest.length) batch.push({ number: ++number, text: rest });
    if (batch.length) yield batch;
  } finally {
    if (file !== '-') input.destroy();
  }
}
