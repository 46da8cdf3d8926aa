import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataError } from '../../engine/errors.ts';
import { ColumnarBatchBuilder } from '../../sinks/arrow-columns.ts';
import { PREP_ROW_COLUMNS, type PrepRow } from '../../transforms/prep/prep-row.ts';

function prepRecordBatch(rows: Record<string, unknown>[]) {
  const builder = new ColumnarBatchBuilder(PREP_ROW_COLUMNS);
  for (const row of rows) builder.append(row);
  return builder.finish();
}

const row = (over: Partial<Record<keyof PrepRow, unknown>>) => ({
  example_id: 'prep_000000001',
  task: 'B',
  input: 'in',
  output: 'out',
  anime_ids: [1],
  user_id: 1,
  meta: {},
  ...over,
});

test('integers keep their value across the whole safe range, negative ones included', () => {
  const extremes = [0, -1, 2 ** 32, -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
  const batch = prepRecordBatch([
    row({ anime_ids: extremes, user_id: Number.MIN_SAFE_INTEGER }),
    row({ anime_ids: [], user_id: null }),
  ]);
  assert.deepEqual([...batch.getChild('anime_ids')!.get(0)!], extremes.map(BigInt));
  assert.deepEqual([...batch.getChild('anime_ids')!.get(1)!], []);
  assert.deepEqual([...batch.getChild('user_id')!], [BigInt(Number.MIN_SAFE_INTEGER), null]);
});

test('text of any length and script comes back as written, a json column as JSON text ({} when missing)', () => {
  const long = '東京 “quoted” 🎌 '.repeat(10_000);
  const batch = prepRecordBatch([
    row({ input: long, meta: { template_id: 't' } }),
    row({ input: '', meta: undefined }),
  ]);
  assert.deepEqual([...batch.getChild('input')!], [long, '']);
  assert.deepEqual([...batch.getChild('meta')!], ['{"template_id":"t"}', '{}']);
});

test('a finished builder starts empty: each batch holds only its own rows', () => {
  const builder = new ColumnarBatchBuilder(PREP_ROW_COLUMNS);
  builder.append(row({ input: 'first', anime_ids: [1, 2], user_id: null }));
  builder.finish();
  builder.append(row({ input: 'second', anime_ids: [3], user_id: 4 }));
  const batch = builder.finish();
  assert.equal(batch.numRows, 1);
  assert.deepEqual([...batch.getChild('input')!], ['second']);
  assert.deepEqual([...batch.getChild('anime_ids')!.get(0)!], [3n]);
  assert.deepEqual([...batch.getChild('user_id')!], [4n]);
});

test('the schema follows the declared columns: nullable only where declared', () => {
  const { schema } = new ColumnarBatchBuilder(PREP_ROW_COLUMNS);
  assert.deepEqual(
    schema.fields.map((f) => `${f.name}:${f.type}:${f.nullable}`),
    [
      'example_id:Utf8:false',
      'task:Utf8:false',
      'input:Utf8:false',
      'output:Utf8:false',
      'anime_ids:List<Int64>:false',
      'user_id:Int64:true',
      'meta:Utf8:false',
    ],
  );
});

test('a value that does not fit its column is a DataError naming the row and the column', () => {
  assert.throws(
    () => prepRecordBatch([row({}), row({ user_id: 1.5 })]),
    (error: unknown) =>
      error instanceof DataError &&
      /row 2: column 'user_id': expected a safe integer or null, got 1.5/.test(error.message),
  );
  assert.throws(
    () => prepRecordBatch([row({ task: null })]),
    (error: unknown) =>
      error instanceof DataError && /row 1: column 'task': expected a string, got null/.test(error.message),
  );
});
