import type { Columns } from '../../engine/columns.ts';

/** The row format of prep's outputs (llm_prep_train.jsonl and .parquet); spec: docs/prep.md. */

export type Task = 'A' | 'B' | 'C';

/** A task's row before it is numbered; field order is the output's. */
export interface TaskRow {
  task: Task;
  input: string;
  output: string;
  anime_ids: number[];
  user_id: number | null;
  meta: Record<string, unknown>;
}

/** A prep row as written: numbered by the shuffle. */
export interface PrepRow extends TaskRow {
  example_id: string;
}

/**
 * PrepRow as Parquet columns (prep-shuffle declares them, so parquet-sink needs no schema).
 * `meta` differs by task (A, B and C carry different fields), so it is one JSON text column
 * rather than a struct whose shape would have to be the union of all of them. `task` and `meta`
 * repeat a few values, so only they are dictionary-encoded.
 */
export const PREP_ROW_COLUMNS = {
  example_id: { type: 'string' },
  task: { type: 'string', dictionary: true },
  input: { type: 'string' },
  output: { type: 'string' },
  anime_ids: { type: 'int64[]' },
  user_id: { type: 'int64', nullable: true },
  meta: { type: 'json', dictionary: true },
} as const satisfies Columns;
