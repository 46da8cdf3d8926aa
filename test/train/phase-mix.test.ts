import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { runTransform } from '../../engine/run-node.ts';
import phaseMix from '../../transforms/train/phase-mix.ts';
import type { TokenizedExample } from '../../transforms/train/types.ts';

const example = (group: string, i: number): TokenizedExample => ({
  key: `${group}:${i}`,
  ids: Int32Array.of(i, i + 1),
  promptLen: 1,
  group,
});
const pool = (group: string, n: number) => Array.from({ length: n }, (_, i) => example(group, i));
/** 100 A, 50 B and 10 C domain rows, 20 general rows from two sources. */
const domain = [...pool('A', 100), ...pool('B', 50), ...pool('C', 10)];
const general = [...pool('SlimOrca', 12), ...pool('OpenHermes', 8)];

const mix = (options: Record<string, unknown>, batches = [domain], seed = 42) =>
  runTransform<TokenizedExample>(phaseMix, options, { domain: batches, general: [general] }, { id: 'mix', seed });

const byGroup = (rows: TokenizedExample[]) => {
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.group!] = (counts[row.group!] ?? 0) + 1;
  return counts;
};

const phase1 = { weight_task_a: 0.85, weight_task_b: 0.1, weight_task_c: 0.05, general_ratio: 0.15 };

test('a phase takes each task by its weight and adds general rows to exactly their ratio of the phase', async () => {
  const { rows, stats } = await mix(phase1);
  // 160 domain rows: A 136, B 16, C 8 (C takes the remainder); general 160 × .15/.85 = 28.2 -> 28.
  assert.deepEqual(stats.quotas, { A: 136, B: 16, C: 8, general: 28 });
  const counts = byGroup(rows);
  assert.deepEqual([counts.A, counts.B, counts.C], [136, 16, 8]);
  assert.equal(counts.SlimOrca! + counts.OpenHermes!, 28);
  assert.equal(rows.length, 188);
  assert.ok(Math.abs(28 / 188 - 0.15) < 0.5 / 188, 'the general share is the ratio, to one row');
});

test('a quota larger than its pool repeats the pool in keyed passes, every key unique', async () => {
  // Phase 2's weights on these pools: C gets 72 of 160 from a pool of 10.
  const { rows, stats } = await mix({ weight_task_a: 0.1, weight_task_b: 0.45, weight_task_c: 0.45, general_ratio: 0 });
  assert.deepEqual(stats.quotas, { A: 16, B: 72, C: 72, general: 0 });
  const c = rows.filter((r) => r.group === 'C').map((r) => r.key);
  assert.equal(c.length, 72);
  assert.equal(new Set(c).size, 72);
  // Seven whole passes over the 10 rows, then 2 rows of an eighth.
  for (let i = 0; i < 10; i++) assert.ok(c.includes(`C:${i}#6`), `C:${i} in pass 6`);
  assert.equal(c.filter((key) => key.endsWith('#7')).length, 2);
  assert.equal(new Set(rows.map((r) => r.key)).size, rows.length);
});

test('max_domain_rows caps the domain rows; the general rows follow the capped count', async () => {
  const { stats, rows } = await mix({ ...phase1, max_domain_rows: 40 });
  assert.deepEqual(stats.quotas, { A: 34, B: 4, C: 2, general: 7 });
  assert.equal(rows.length, 47);
});

test('the mix is the same whatever the batching; the seed and the general seed choose the rows', async () => {
  const { rows } = await mix(phase1);
  const keys = (r: TokenizedExample[]) => r.map((x) => x.key);
  const rebatched = [domain.slice(0, 7), domain.slice(7, 100), domain.slice(100)];
  assert.deepEqual(keys((await mix(phase1, rebatched)).rows), keys(rows));
  assert.notDeepEqual(keys((await mix(phase1, [domain], 7)).rows), keys(rows), 'another seed, another order');
  const generalKeys = async (o: Record<string, unknown>, seed = 42) =>
    keys((await mix({ ...phase1, ...o }, [domain], seed)).rows.filter((r) => r.group !== 'A' && r.group !== 'B'))
      .filter((k) => !k.startsWith('C'))
      .sort();
  assert.notDeepEqual(await generalKeys({ general_seed: 7 }), await generalKeys({}), 'general_seed draws other rows');
  assert.deepEqual(await generalKeys({ general_seed: 42 }), await generalKeys({}), 'auto is the run seed');
});

test('a weight with no rows to draw from, or general rows asked of an empty source, is one line', async () => {
  await assert.rejects(
    runTransform(phaseMix, phase1, { domain: [pool('A', 5)], general: [general] }, { id: 'mix' }),
    /phase: weight_task_c asks for 1 Task C rows but the input has none/,
  );
  await assert.rejects(
    runTransform(phaseMix, phase1, { domain: [domain], general: [] }, { id: 'mix' }),
    /general_ratio is 0.15 but there are no general instruction rows/,
  );
  await assert.rejects(
    runTransform(phaseMix, phase1, { domain: [[example('D', 1)]], general: [general] }, { id: 'mix' }),
    /example D:1: task "D" is not A, B or C/,
  );
});
