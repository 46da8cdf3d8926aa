import { parentPort, workerData } from 'node:worker_threads';
import { openReadOnly } from '../../../sources/sqlite-schema.ts';
import { RangeScanner, transferables, type ScanRequest } from './scan-chunk.ts';

/** A worker thread with its own read-only connection, scanning the user-id ranges it is sent. */
const { database, extension } = workerData as { database: string; extension: string };
const db = openReadOnly(database);
let scanner: RangeScanner | Error | undefined;
parentPort!.on(
  'message',
  (message: { request: ScanRequest } | { read: number; range: [number, number]; limit: number; after?: number }) => {
    if ('request' in message) {
      try {
        scanner = new RangeScanner(db, message.request, extension);
      } catch (error) {
        scanner = error as Error;
      }
      return;
    }
    try {
      if (scanner instanceof Error) throw scanner;
      const result = scanner!.scan(...message.range, message.limit, message.after);
      parentPort!.postMessage({ read: message.read, result }, transferables(result));
    } catch (error) {
      parentPort!.postMessage({ read: message.read, error: (error as Error).message });
    }
  },
);
