import { z } from 'zod';
import { defineSource, rowStats } from '../engine/node.ts';
import { inputPath } from '../engine/options.ts';
import { fromGenerator } from '../engine/stream.ts';
import type Database from 'better-sqlite3';
import { lockedDatabase, openReadOnly, quoteIdent, schemaProblems, tableColumns } from './sqlite-schema.ts';

const options = z.strictObject({
  database: inputPath('SQLite database file (opened read-only)'),
  table: z.string().min(1).describe('table to read'),
  columns: z.array(z.string().min(1)).min(1).describe('required columns; a missing one is an error'),
  optional_columns: z.array(z.string().min(1)).default([]).describe('columns read when present, null otherwise'),
  order_by: z.array(z.string().min(1)).default([]).describe('columns to order by (ascending); empty = table order'),
});

/**
 * The statement reading `names` of a table (a column it lacks reads as NULL) and its row count.
 * A database locked since validation is a DataError saying so.
 */
function openTable(database: string, table: string, names: readonly string[], orderBy: readonly string[]) {
  let db: Database.Database | undefined;
  try {
    db = openReadOnly(database);
    const present = tableColumns(db, table)!;
    const select = names.map((c) => (present.has(c) ? quoteIdent(c) : `NULL AS ${quoteIdent(c)}`)).join(', ');
    const order = orderBy.length ? ` ORDER BY ${orderBy.map(quoteIdent).join(', ')}` : '';
    const statement = db.prepare(`SELECT ${select} FROM ${quoteIdent(table)}${order}`).raw(true);
    const total =
      (db
        .prepare(`SELECT count(*) FROM ${quoteIdent(table)}`)
        .pluck()
        .get() as number) ?? 0;
    return { db, statement, total };
  } catch (error) {
    db?.close();
    throw lockedDatabase(error, database) ?? error;
  }
}

/** Streams a table's rows in batches through a read-only cursor; the table is never held in memory. */
export default defineSource({
  type: 'sqlite-source',
  kind: 'source',
  description: 'Streams rows of a SQLite table (read-only cursor, batched), checking its schema first.',
  options,
  stats: rowStats,
  check: (o) => schemaProblems(o.database, o.table, [...o.columns, ...o.order_by]),
  create(ctx) {
    const { database, table, columns, optional_columns, order_by } = ctx.options;
    const batch_size = ctx.pipeline.batchSize;
    const names = [...columns, ...optional_columns];
    const { db, statement, total } = openTable(database, table, names, order_by);
    const counter = ctx.progress.counter(table, { unit: 'rows', total });
    let cursor: IterableIterator<unknown[]> | undefined;
    ctx.onClose(() => {
      cursor?.return?.();
      db.close();
    });
    return fromGenerator(function* () {
      cursor = statement.iterate() as IterableIterator<unknown[]>;
      let batch: Record<string, unknown>[] = [];
      let count = 0;
      for (const values of cursor) {
        const row: Record<string, unknown> = {};
        for (let i = 0; i < names.length; i++) row[names[i]!] = values[i];
        batch.push(row);
        if (batch.length >= batch_size) {
          count += batch.length;
          counter.add(batch.length);
          yield batch;
          batch = [];
        }
      }
      count += batch.length;
      counter.add(batch.length);
      if (batch.length) yield batch;
      ctx.stats.rows = count;
      counter.done();
    });
  },
});
