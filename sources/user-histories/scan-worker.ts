import { parentPort, workerData } from 'node:worker_threads';
import { openReadOnly } from '../sqlite-schema.ts';
import { RangeScanner, transferables, type ScanRequest } from './scan-chunk.ts';

/** A worker thread with its own read-only connection, scanning the user-id ranges it is sent. */
const db = openReadOnly((workerData as { database: string }).database);
let scanner: RangeScanner | undefined;
parentPort!.on('message', (message: { request: ScanRequest } | { chunk: number; range: [number, number] }) => {
  if ('request' in message) {
    scanner = new RangeScanner(db, message.request);
    return;
  }
  try {
    const result = scanner!.scan(...message.range);
    parentPort!.postMessage({ chunk: message.chunk, result }, transferables(result));
  } catch (error) {
    parentPort!.postMessage({ chunk: message.chunk, error: (error as Error).message });
  }
});
