import { createWriteStream, type WriteStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import parquet from '@dsnp/parquetjs';
import { DataError } from '../engine/errors.ts';

/**
 * The parquet-sink's writer thread: parquetjs shreds, encodes and compresses in JavaScript, ~30 µs a
 * prep row, so it runs beside the main thread instead of on it. Protocol as in worker-writer.ts:
 * a message is one batch of rows, answered with 'written'; 'close' is answered with 'closed' once
 * the footer is on disk.
 */
import type { Compression } from './parquet-sink.ts';

/**
 * The prep row as Parquet. `meta` differs by task (A, B and C carry different fields), so it is one
 * JSON text column rather than a struct whose shape would have to be the union of all of them.
 */
function prepRowSchema(compression: Compression) {
  const text = { type: 'UTF8', compression } as const;
  return new parquet.ParquetSchema({
    example_id: text,
    task: text,
    input: text,
    output: text,
    // parquetjs applies a LIST's compression per leaf, so it goes on the element, not on the list.
    anime_ids: parquet.ParquetFieldBuilder.createListField('INT64', false, { optional: false, compression }),
    user_id: { type: 'INT64', optional: true, compression },
    meta: text,
  });
}

interface PrepRow {
  example_id: string;
  task: string;
  input: string;
  output: string;
  anime_ids: number[];
  user_id: number | null;
  meta: unknown;
}

function toRecord(row: PrepRow): Record<string, unknown> {
  const problem =
    (['example_id', 'task', 'input', 'output'] as const).find((key) => typeof row[key] !== 'string') ??
    (!Array.isArray(row.anime_ids) || !row.anime_ids.every(Number.isSafeInteger) ? 'anime_ids' : undefined) ??
    (row.user_id != null && !Number.isSafeInteger(row.user_id) ? 'user_id' : undefined);
  if (problem)
    throw new DataError(
      `row ${JSON.stringify(row.example_id)}: field '${problem}' does not fit the prep row format ` +
        '(strings example_id, task, input, output; integer list anime_ids; integer or null user_id)',
    );
  return {
    example_id: row.example_id,
    task: row.task,
    input: row.input,
    output: row.output,
    anime_ids: { list: row.anime_ids.map((element) => ({ element })) },
    user_id: row.user_id ?? null,
    meta: JSON.stringify(row.meta ?? {}),
  };
}

/**
 * The file as parquetjs sees it. parquetjs leaves some writes unawaited (the header, page indexes),
 * so a failed write would surface as an unhandled rejection; here it never fails a write callback,
 * and the sink checks `error` at each step it does await instead. parquetjs only calls the
 * callback forms of write and end, hence the cast where it is handed over.
 */
class FileTarget {
  error: Error | undefined;

  constructor(private readonly out: WriteStream) {
    out.on('error', (error) => (this.error ??= error));
  }

  write(buf: Buffer, done: (error?: Error | null) => void): void {
    if (this.error) return done();
    this.out.write(buf, (error) => {
      if (error) this.error ??= error;
      done();
    });
  }

  end(done: (error?: Error | null) => void): void {
    this.out.end(() => done());
  }

  check(): void {
    if (this.error) throw this.error;
  }
}

export interface ParquetWriterData {
  path: string;
  rowGroupSize: number;
  compression: Compression;
}

async function main(port: NonNullable<typeof parentPort>, { path, rowGroupSize, compression }: ParquetWriterData) {
  const target = new FileTarget(createWriteStream(path));
  const writer = await parquet.ParquetWriter.openStream(prepRowSchema(compression), target as unknown as WriteStream, { rowGroupSize });
  let queue = Promise.resolve();
  port.on('message', (message: PrepRow[] | 'close') => {
    queue = queue.then(async () => {
      if (message === 'close') {
        // Resolves once the footer is flushed, so the manifest hashes the final bytes.
        await writer.close();
        target.check();
        port.postMessage('closed');
        return;
      }
      // One at a time: appends that overlap a row-group flush are written twice.
      for (const row of message) await writer.appendRow(toRecord(row));
      target.check();
      port.postMessage('written');
    });
    // A failure is left unhandled on purpose: it ends the thread, and worker-writer.ts reports it as the sink's error.
  });
}

if (parentPort) await main(parentPort, workerData as ParquetWriterData);
