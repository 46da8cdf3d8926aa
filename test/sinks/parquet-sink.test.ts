import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { DataError } from '../../engine/errors.ts';
import { createReporter } from '../../engine/progress.ts';
import { runPlan } from '../../engine/runtime.ts';
import { PREP_ROW_COLUMNS } from '../../transforms/prep/prep-row.ts';
import { loadTestPlan } from '../helpers/plan.ts';
import { PREP_YAML, readRows } from '../prep/run-prep.ts';
import { prepRows, runYaml, tempDir, writeJsonl } from './prep-rows.ts';

const pipeline = (rowGroupSize: number, { batchSize = 1024, compression = 'SNAPPY' } = {}) => `
name: parquet-test
seed: 1
batch_size: ${batchSize}
nodes:
  rows:
    use: jsonl-source
    path: rows.jsonl
  parquet:
    use: parquet-sink
    from: rows
    path: out/rows.parquet
    # jsonl-source declares no columns, so they are given here (JSON is YAML).
    columns: ${JSON.stringify(PREP_ROW_COLUMNS)}
    row_group_size: ${rowGroupSize}
    compression: ${compression}
`;

/** A row as DuckDB reads it back, in the prep row's own types (BIGINT comes back as bigint, meta as its JSON text). */
const asPrepRow = (r: Record<string, unknown>) => ({
  example_id: r.example_id,
  task: r.task,
  input: r.input,
  output: r.output,
  anime_ids: (r.anime_ids as bigint[]).map(Number),
  user_id: r.user_id === null ? null : Number(r.user_id),
  meta: JSON.parse(r.meta as string) as unknown,
});

// DuckDB is an independent reader: agreeing with it means the file
// follows the Parquet spec, not just the writer's own reading of it.
describe('parquet-sink', () => {
  let instance: DuckDBInstance;
  let db: DuckDBConnection;
  before(async () => {
    instance = await DuckDBInstance.create(':memory:');
    db = await instance.connect();
  });
  after(() => {
    db.closeSync();
    instance.closeSync();
  });
  const query = async (sql: string, file: string) => (await db.runAndReadAll(sql, [file])).getRowObjectsJS();

  test('writes prep rows that DuckDB reads back with the expected types and values', async () => {
    const dir = tempDir('parquet');
    const rows = prepRows(2500);
    writeJsonl(path.join(dir, 'rows.jsonl'), rows);
    const result = await runYaml(dir, pipeline(1000));
    const file = path.join(dir, 'out/rows.parquet');
    assert.deepEqual(result.outputs, [file]);
    assert.equal(result.stats.parquet!.rows, 2500);

    const types = Object.fromEntries(
      (await query('DESCRIBE SELECT * FROM read_parquet(?)', file)).map((r) => [r.column_name, r.column_type]),
    );
    assert.deepEqual(types, {
      example_id: 'VARCHAR',
      task: 'VARCHAR',
      input: 'VARCHAR',
      output: 'VARCHAR',
      anime_ids: 'BIGINT[]',
      user_id: 'BIGINT',
      meta: 'VARCHAR',
    });
    const groups = await query('SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata(?)', file);
    assert.equal(groups[0]!.n, 3n);
    const codecs = await query('SELECT DISTINCT compression FROM parquet_metadata(?)', file);
    assert.deepEqual(
      codecs.map((r) => r.compression),
      ['SNAPPY'],
    );

    const read = await query('SELECT * FROM read_parquet(?) ORDER BY example_id', file);
    assert.equal(read.length, rows.length);
    assert.equal(read.filter((r) => r.user_id === null).length, rows.filter((r) => r.user_id === null).length);
    const back = read.map(asPrepRow);
    assert.deepEqual(back, rows);
  });

  test('the file is the same bytes however the rows were batched upstream', async () => {
    const rows = prepRows(2500);
    const digests = await Promise.all(
      [1, 7, 4096].map(async (batchSize) => {
        const dir = tempDir(`parquet-batch-${batchSize}`);
        writeJsonl(path.join(dir, 'rows.jsonl'), rows);
        await runYaml(dir, pipeline(1000, { batchSize }));
        return createHash('sha256')
          .update(readFileSync(path.join(dir, 'out/rows.parquet')))
          .digest('hex');
      }),
    );
    assert.equal(new Set(digests).size, 1);
  });

  test('ZSTD compression, read back by DuckDB', async () => {
    const dir = tempDir('parquet-zstd');
    const rows = prepRows(300);
    writeJsonl(path.join(dir, 'rows.jsonl'), rows);
    await runYaml(dir, pipeline(1000, { compression: 'ZSTD' }));
    const file = path.join(dir, 'out/rows.parquet');
    const codecs = await query('SELECT DISTINCT compression FROM parquet_metadata(?)', file);
    assert.deepEqual(
      codecs.map((r) => r.compression),
      ['ZSTD'],
    );
    assert.deepEqual((await query('SELECT * FROM read_parquet(?) ORDER BY example_id', file)).map(asPrepRow), rows);
  });

  test(
    'prep.yaml with export_parquet: the Parquet rows are the ' +
      'JSONL rows, Task B inputs (kept as bytes until read) included',
    async () => {
      const out = tempDir('parquet-prep');
      const params = { out_dir: out, export_parquet: 'true', target_examples: '3000' };
      await runPlan(await loadTestPlan(PREP_YAML, params, 500), {
        reporter: createReporter({ mode: 'quiet', format: 'text' }),
      });
      const read = await query(
        'SELECT * FROM read_parquet(?) ORDER BY example_id',
        path.join(out, 'llm_prep_train.parquet'),
      );
      const back = read.map(asPrepRow);
      assert.deepEqual(back, readRows(out));
      assert.ok(back.some((row) => row.task === 'B'));
    },
  );

  test('a row outside the prep format fails the run, naming the field, and leaves no file', async () => {
    const dir = tempDir('parquet-bad');
    const rows: unknown[] = prepRows(10);
    rows[4] = { ...(rows[4] as object), anime_ids: ['x'] };
    writeJsonl(path.join(dir, 'rows.jsonl'), rows);
    await assert.rejects(runYaml(dir, pipeline(4)), (error: unknown) => {
      assert.ok(error instanceof DataError);
      assert.match(error.oneLine(), /node 'parquet'.*row 5: column 'anime_ids': expected a list of safe integers/);
      return true;
    });
    assert.equal(
      existsSync(path.join(dir, 'out')),
      false,
      `left behind: ${existsSync(path.join(dir, 'out')) ? readdirSync(path.join(dir, 'out')) : ''}`,
    );
  });
});
