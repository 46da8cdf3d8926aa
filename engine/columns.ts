import { z } from 'zod';

/**
 * A row layout as columns, for sinks that write columnar files (parquet-sink). A node declares
 * the layout of the rows it emits (`columns` on its definition), so a sink after it needs no
 * schema of its own; a pipeline may also give one in the sink's options.
 *
 * - `string`: text; `int64`: a safe integer; `int64[]`: a list of them;
 * - `json`: any value, stored as its JSON text (a missing value as `{}`), for fields whose shape
 *   differs from row to row.
 */
export const columnSchema = z.strictObject({
  type: z.enum(['string', 'int64', 'int64[]', 'json']),
  nullable: z.boolean().default(false).describe('null and missing values allowed'),
  dictionary: z
    .boolean()
    .default(false)
    .describe('dictionary-encode: pays off only for columns with few distinct values'),
});

export type Column = z.input<typeof columnSchema>;
export type Columns = Readonly<Record<string, Column>>;
export const columnsSchema = z.record(z.string().min(1), columnSchema);
