import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { DataError } from '../engine/errors.ts';
import type { OptionProblem } from '../engine/node.ts';

/**
 * Page cache of a read-only connection, in KiB. Its passes read each page once, so better-sqlite3's
 * default of 16 MB a connection only holds pages never read again, and a worker thread's cache
 * stays resident in its malloc arena after the thread ends: 36-41 MB of peak RSS at 1M and 10M
 * rows with two scan workers, at no measured cost in time.
 */
const READ_CACHE_KIB = 1024;

/** Opens a database read-only; the caller must close it. */
export function openReadOnly(file: string): Database.Database {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma(`cache_size = -${READ_CACHE_KIB}`);
  return db;
}

/** The columns of a table, or undefined when the table does not exist. */
export function tableColumns(db: Database.Database, table: string): Set<string> | undefined {
  const rows = db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as { name: string }[];
  return rows.length ? new Set(rows.map((r) => r.name)) : undefined;
}

/**
 * A database another process holds locked (SQLITE_BUSY once better-sqlite3's 5 s wait runs out, or
 * SQLITE_LOCKED) as a DataError: the condition passes, so it is no mistake in the pipeline (exit 1).
 * Its `key` names the option, `database`. Undefined for any other error.
 */
export function lockedDatabase(error: unknown, file: string): DataError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^SQLITE_(BUSY|LOCKED)/.test(code)) return undefined;
  const base = code.startsWith('SQLITE_BUSY') ? 'SQLITE_BUSY' : 'SQLITE_LOCKED';
  return new DataError(`database ${file} is locked by another process (${base}); try again once it is released`, {
    key: 'database',
  });
}

/**
 * Schema problems as one message each, naming database, table and column, so a user can tell
 * a wrong file from a wrong schema at a glance. `more` checks a table that has every required
 * column further, on the same connection.
 */
export function schemaProblems(
  file: string,
  table: string,
  required: readonly string[],
  option = 'table',
  more?: (db: Database.Database) => OptionProblem[],
): OptionProblem[] {
  let db: Database.Database | undefined;
  // SQLite opens a folder, then fails on its first read with "disk I/O error".
  if (isFolder(file))
    return [{ option: 'database', message: `option 'database': ${file} is a folder, expected a file` }];
  try {
    db = openReadOnly(file);
    const columns = tableColumns(db, table);
    if (!columns) return [{ option, message: `database ${file} has no table '${table}' (expected table '${table}')` }];
    const missing = required
      .filter((c) => !columns.has(c))
      .map((c) => ({ option, message: `database ${file}, table '${table}': missing required column '${c}'` }));
    return missing.length || !more ? missing : more(db);
  } catch (error) {
    const locked = lockedDatabase(error, file);
    if (locked) throw locked;
    return [{ option: 'database', message: `cannot open ${file} as a SQLite database: ${(error as Error).message}` }];
  } finally {
    db?.close();
  }
}

function isFolder(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
