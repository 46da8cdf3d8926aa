import type { Batch } from '../engine/node.ts';

/**
 * A producer that can make a batch's JSON lines more cheaply than serializing its rows (rows
 * assembled from pieces already in JSON form) attaches them to the batch array under this symbol:
 * exactly what JSON.stringify gives for each row. Sinks that write JSON Lines use them. They
 * belong to that array only (filtering or mapping makes a new array without them), and stay valid
 * because batches are never changed in place: forks share them.
 */
const JSON_LINES = Symbol('animind.jsonLines');

/** Attaches `make` (called at most once, when first asked) as the batch's JSON lines. */
export function attachJsonLines(batch: Batch, make: () => string[]): void {
  let lines: string[] | undefined;
  Object.defineProperty(batch, JSON_LINES, { get: () => (lines ??= make()) });
}

/**
 * The batch's rows as JSON text, one string a row: the attached lines, or JSON.stringify's. Kept
 * apart rather than joined: a joined batch is megabytes, which V8 allocates outside the young
 * generation, so each one would wait for a full collection.
 */
export function jsonLines(batch: Batch): string[] {
  return (batch as { [JSON_LINES]?: string[] })[JSON_LINES] ?? batch.map((row) => JSON.stringify(row));
}
