import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DataError } from '../../engine/errors.ts';
import { BottomK } from '../../transforms/prep/bottom-k.ts';
import { fillByPasses, roundHalfEven } from '../../engine/keyed-order.ts';
import { quotas, splitsProblem } from '../../transforms/prep/quotas.ts';
import sampleNode, { reserveFor } from '../../transforms/prep/sample.ts';
import shuffleNode from '../../transforms/prep/shuffle.ts';
import type { HeldOutExample, PoolItem } from '../../transforms/prep/types.ts';
import type { PrepRow, TaskRow, Task } from '../../transforms/prep/prep-row.ts';
import { rebatch, runNode } from './harness.ts';

const item = (task: Task, n: number): PoolItem<TaskRow> => ({
  key: `${task}:${n}`,
  row: {
    task,
    input: `in ${n}`,
    output: `out ${n}`,
    anime_ids: [n],
    user_id: task === 'A' ? null : n,
    meta: { template_id: 't' },
  },
});
const pool = (task: Task, size: number) => Array.from({ length: size }, (_, n) => item(task, n));
const options = (target: number) => ({ target_examples: target, split_a: 0.5, split_b: 0.25, split_c: 0.25 });

test('round_half_even and quotas: A and B rounded half to even, C takes the rest', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 2.4, 2.6, 3].map(roundHalfEven), [0, 2, 2, 2, 3, 3]);
  assert.deepEqual(quotas(400000, { split_a: 0.5, split_b: 0.25, split_c: 0.25 }), { A: 200000, B: 100000, C: 100000 });
  assert.deepEqual(quotas(5, { split_a: 0.5, split_b: 0.25, split_c: 0.25 }), { A: 2, B: 1, C: 2 });
  assert.deepEqual(quotas(10, { split_a: 0.25, split_b: 0.25, split_c: 0.5 }), { A: 2, B: 2, C: 6 });
});

test('splits must sum to 1 (±1e-6)', () => {
  assert.equal(splitsProblem({ split_a: 0.5, split_b: 0.25, split_c: 0.2500005 }), undefined);
  assert.match(splitsProblem({ split_a: 0.5, split_b: 0.25, split_c: 0.3 })!, /must sum to 1.*= 1\.05/);
  const parsed = sampleNode.options.safeParse({ target_examples: 10, split_a: 0.6 });
  assert.equal(parsed.success, false);
  assert.deepEqual(parsed.error!.issues[0]!.path, ['split_a']);
});

test('bottom-k keeps the k smallest priorities, whatever the arrival order', () => {
  const values = Array.from({ length: 500 }, (_, i) => ({ p: (i * 7919) % 1000, key: `k${i}` }));
  const smallest = [...values]
    .sort((a, b) => a.p - b.p)
    .slice(0, 20)
    .map((v) => v.key);
  for (const order of [values, [...values].reverse()]) {
    const sampler = new BottomK<string>(20, (key) => key);
    for (const v of order) sampler.offer(v.p, v.key);
    assert.deepEqual(sampler.take(), smallest);
    assert.equal(sampler.size, 0);
  }
  const none = new BottomK<string>(0, (key) => key);
  none.offer(1, 'a');
  assert.equal(none.size, 0);
});

test('bottom-k breaks equal priorities on the key, which it asks of the item only then', () => {
  const asked: string[] = [];
  const sampler = new BottomK<{ id: string }>(2, (item) => (asked.push(item.id), item.id));
  for (const id of ['c', 'a', 'd', 'b']) sampler.offer(5, { id });
  assert.deepEqual(
    sampler.take().map((item) => item.id),
    ['a', 'b'],
  );
  asked.length = 0;
  const distinct = new BottomK<{ id: string }>(2, (item) => (asked.push(item.id), item.id));
  for (const [p, id] of [
    [3, 'c'],
    [1, 'a'],
    [4, 'd'],
    [2, 'b'],
  ] as const)
    distinct.offer(p, { id });
  assert.deepEqual(
    distinct.take().map((item) => item.id),
    ['a', 'b'],
  );
  assert.deepEqual(asked, []);
});

test('pool >= quota: a uniform sample without replacement, the same for any batching or order', async () => {
  const run = async (size: number, reverse = false) => {
    const a = reverse ? pool('A', 2000).reverse() : pool('A', 2000);
    const { rows, stats } = await runNode<PoolItem<TaskRow>>(sampleNode, options(400), {
      a: rebatch(a, size),
      b: [pool('B', 300)],
      c: [pool('C', 300)],
    });
    return { keys: rows.map((r) => r.key), stats };
  };
  const reference = await run(4096);
  const a = reference.keys.filter((k) => k.startsWith('A:'));
  assert.equal(a.length, 200);
  assert.equal(new Set(a).size, 200, 'no repeats');
  assert.deepEqual((await run(1)).keys, reference.keys);
  assert.deepEqual((await run(7, true)).keys, reference.keys);
  assert.deepEqual(reference.stats.oversampling_factor, { A: 1, B: 1, C: 1 });
  // Uniform: each tenth of the pool holds about a tenth of the sample.
  const tenths = Array<number>(10).fill(0);
  for (const key of a) tenths[Math.floor(Number(key.slice(2)) / 200)]!++;
  for (const t of tenths) assert.ok(t >= 8 && t <= 34, `per tenth: ${tenths.join(',')}`);
});

test('0 < pool < quota: full passes, each in a fresh keyed order, reported as the oversampling factor', async () => {
  const { rows, stats } = await runNode<PoolItem<TaskRow>>(sampleNode, options(40), {
    a: [pool('A', 20)],
    b: [pool('B', 4)],
    c: [pool('C', 3)],
  });
  const b = rows.filter((r) => r.row.task === 'B').map((r) => r.key);
  assert.equal(b.length, 10);
  assert.deepEqual(b.slice(0, 4).sort(), ['B:0', 'B:1', 'B:2', 'B:3'], 'the first pass is the whole pool');
  assert.deepEqual(b.filter((k) => k.endsWith('#1')).length, 4, 'the second pass too');
  assert.equal(b.filter((k) => k.endsWith('#2')).length, 2, 'the third pass fills the rest');
  assert.equal(new Set(rows.map((r) => r.key)).size, rows.length, 'every sampled row keeps a unique key');
  assert.deepEqual(stats.oversampling_factor, { A: 1, B: 2.5, C: Number((10 / 3).toFixed(6)) });
  assert.deepEqual(stats.passes, { A: 1, B: 3, C: 4 });
});

test(
  'fillByPasses takes whole passes as the pool stands ' + 'and cuts the last by the keyed priority of (key, pass)',
  () => {
    const items = pool('C', 3);
    const priority = (key: string, pass: number) => (pass === 1 ? -Number(key.slice(2)) : Number(key.slice(2)));
    assert.deepEqual(
      fillByPasses(items, 5, priority, (item, pass) => ({ ...item, key: `${item.key}#${pass}` })).map((i) => i.key),
      ['C:0', 'C:1', 'C:2', 'C:2#1', 'C:1#1'],
    );
    assert.deepEqual(
      fillByPasses(items, 2, priority, () => assert.fail('a quota within the pool repeats nothing')).map((i) => i.key),
      ['C:0', 'C:1'],
    );
  },
);

test('an empty pool with a positive quota is an error naming the task', async () => {
  await assert.rejects(
    runNode(sampleNode, options(40), { a: [pool('A', 20)], b: [], c: [pool('C', 3)] }),
    (error: unknown) => {
      assert.ok(error instanceof DataError);
      assert.match(error.message, /^Task B pool is empty but its quota is 10/);
      return true;
    },
  );
  const { rows } = await runNode<PoolItem<TaskRow>>(
    sampleNode,
    { ...options(4), split_a: 1, split_b: 0, split_c: 0 },
    { a: [pool('A', 20)], b: [], c: [] },
  );
  assert.equal(rows.length, 4, 'an empty pool with quota 0 is fine');
});

/** A Task B pool row whose (history, target) is ([n], 10000 + n), and the held-out example with that pair. */
const watchRow = (n: number): PoolItem<TaskRow> => ({
  key: `B:${n}`,
  row: {
    task: 'B',
    input: `in ${n}`,
    output: `out ${n}`,
    anime_ids: [n, 10000 + n],
    user_id: n,
    meta: { template_id: 'watch_sequence_mask', mask_mode: 'last', mask_index: 1, history_len: 2 },
  },
});
const heldOutWith = (n: number): HeldOutExample => ({
  user_id: 100000 + n,
  history: [n],
  target_anime_id: 10000 + n,
  target_sid: `<S${10000 + n}>`,
  target_sentiment: '<watch>',
  history_len: 1,
  prompt: '…',
});

describe('Task B rows that repeat a held-out example', () => {
  /** The sampled Task B keys, from a B pool of `size` rows and the held-out examples of `held`. */
  const sampleB = async (target: number, b: PoolItem[], held: number[]) => {
    const { rows, stats } = await runNode<PoolItem>(sampleNode, options(target), {
      a: [pool('A', 20)],
      b: [b],
      c: [pool('C', 20)],
      valid: [held.map(heldOutWith)],
      test: [[]],
    });
    return { keys: rows.filter((r) => r.key.startsWith('B:')).map((r) => r.key), stats };
  };
  const poolOf = (size: number) => Array.from({ length: size }, (_, n) => watchRow(n));

  test(
    "a training user's Task B row with a held-out example's (history, target) is set aside: " +
      'the sample is the one of the pool without it, pool smaller or larger than the quota',
    async () => {
      // Quota B 10: a pool of 6 is repeated in passes; one of 1,200 (past quota and reserve) is cut.
      for (const [target, size] of [
        [40, 6],
        [40, 1200],
      ] as const) {
        const whole = await sampleB(target, poolOf(size), []);
        // Set aside rows the sample took, so the rows after them must fill in.
        const held = whole.keys.slice(0, 3).map((key) => Number(key.slice(2).split('#')[0]));
        const without = poolOf(size).filter((_, n) => !held.includes(n));
        const expected = await sampleB(target, without, []);
        const actual = await sampleB(target, poolOf(size), held);
        assert.deepEqual(actual.keys, expected.keys, `pool of ${size}`);
        assert.equal(actual.stats.held_out_pair_repeats, 3);
        assert.deepEqual(actual.stats.oversampling_factor, expected.stats.oversampling_factor);
      }
    },
  );

  test('more repeats than the reserve of next rows stop the run, with the counts and what to change', async () => {
    // Quota B 1 keeps 1 + 1,025 rows; every row of a pool of 1,100 repeats a held-out pair.
    const size = 1100;
    const ids = Array.from({ length: size }, (_, n) => n);
    await assert.rejects(
      sampleB(4, poolOf(size), ids),
      (error: Error) =>
        error instanceof DataError &&
        error.message ===
          "1,026 of the 1,026 Task B rows sampled repeat a held-out example's (history, target) pair, " +
            'more than the 1,025 kept in reserve: lower holdout_valid and holdout_test',
    );
    assert.equal(reserveFor(1), 1025);
  });
});

test('shuffle: all tasks together in a keyed order, numbered prep_000000001…, independent of batching', async () => {
  const items = [...pool('A', 30), ...pool('B', 20), ...pool('C', 10)];
  const run = async (rows: PoolItem[], size: number, batchSize: number) =>
    (await runNode<PrepRow>(shuffleNode, {}, { in: rebatch(rows, size) }, { batchSize })).rows;
  const reference = await run(items, 4096, 1024);
  assert.deepEqual(reference.map((r) => r.example_id).slice(0, 3), [
    'prep_000000001',
    'prep_000000002',
    'prep_000000003',
  ]);
  assert.deepEqual(Object.keys(reference[0]!), [
    'example_id',
    'task',
    'input',
    'output',
    'anime_ids',
    'user_id',
    'meta',
  ]);
  assert.notDeepEqual(reference.map((r) => r.task).join(''), items.map((i) => i.row.task).join(''), 'tasks are mixed');
  assert.deepEqual(await run([...items].reverse(), 7, 3), reference);
});
