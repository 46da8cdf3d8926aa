import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyedRandom } from '../../engine/random.ts';
import historyNode from '../../transforms/prep/history.ts';
import { userHistory, type HistoryCounts } from '../../transforms/prep/user-history.ts';
import maskNode, { maskPositions } from '../../transforms/prep/mask.ts';
import { sentiment, taskBRow } from '../../transforms/prep/task-b.ts';
import { madeRow, type MaskedHistory, type UserHistory } from '../../transforms/prep/types.ts';
import type { PrepRow } from '../../transforms/prep/prep-row.ts';
import shuffleNode from '../../transforms/prep/shuffle.ts';
import { jsonLines } from '../../sinks/json-lines.ts';
import { catalogOf, entry, rebatch, runNode, watch } from './harness.ts';

const catalog = catalogOf(...[1, 2, 3, 4, 5, 6, 7, 8].map((id) => entry(id)));
const options = { allowed: new Set([1, 2, 3, 4, 6]), min: 4, max: 30 };
const counts = (): HistoryCounts => ({ unknown_anime_rows: 0, status_filtered_rows: 0 });

test(
  'Task B input: "A user watched" then "then watched", ' +
    '<anime_start>SID<anime_end>, sentiment on unmasked positions, [MASK] at the mask',
  () => {
    const rows = [watch(9, 1, { score: 9 }), watch(9, 2, { score: 5 }), watch(9, 3, { watching_status: 4 })];
    const item = taskBRow({ user_id: 9, rows, mask_mode: 'random', mask_index: 1 }, catalog, 7);
    assert.deepEqual(
      { key: item.key, row: madeRow(item.row) },
      {
        key: 'B:9:random',
        row: {
          task: 'B',
          input:
            'A user watched <anime_start><S1><anime_end> <liked> ' +
            'then watched <anime_start>[MASK]<anime_end> ' +
            'then watched <anime_start><S3><anime_end> <dropped>',
          output: '<S2>',
          anime_ids: [1, 2, 3],
          user_id: 9,
          meta: { template_id: 'watch_sequence_mask', mask_mode: 'random', mask_index: 1, history_len: 3 },
        },
      },
    );
  },
);

test('Task B in a catalog of more than 65,536 anime: positions past the 65,536th anime read back as written', () => {
  const big = catalogOf(...Array.from({ length: 70000 }, (_, i) => entry(i + 1)));
  const rows = [
    watch(9, 3, { score: 9 }),
    watch(9, 65537, { score: 5 }),
    watch(9, 69999, { watching_status: 4 }),
    watch(9, 65536),
  ];
  const row = madeRow(taskBRow({ user_id: 9, rows, mask_mode: 'last', mask_index: 3 }, big, 7).row);
  assert.equal(
    row.input,
    'A user watched <anime_start><S3><anime_end> <liked> ' +
      'then watched <anime_start><S65537><anime_end> <watch> ' +
      'then watched <anime_start><S69999><anime_end> <dropped> ' +
      'then watched <anime_start>[MASK]<anime_end>',
  );
  assert.equal(row.output, '<S65536>');
  assert.deepEqual(row.anime_ids, [3, 65537, 69999, 65536]);
});

test('sentiment: status 4 is <dropped> whatever the score', () => {
  assert.equal(sentiment({ watching_status: 4, score: 10 }, 7), '<dropped>');
});

test('sentiment: score >= task_b_positive_score_min is <liked>', () => {
  assert.equal(sentiment({ watching_status: 2, score: 7 }, 7), '<liked>');
  assert.equal(sentiment({ watching_status: 1, score: 10 }, 7), '<liked>');
});

test('sentiment: 0 < score <= max(1, floor(min/2)) is <disliked>', () => {
  assert.equal(sentiment({ watching_status: 2, score: 3 }, 7), '<disliked>');
  assert.equal(sentiment({ watching_status: 2, score: 1 }, 7), '<disliked>');
  assert.equal(sentiment({ watching_status: 2, score: 1 }, 1), '<liked>');
  assert.equal(sentiment({ watching_status: 2, score: 1 }, 2), '<disliked>', 'max(1, floor(2/2)) = 1');
  assert.equal(sentiment({ watching_status: 2, score: 2 }, 3), '<watch>', 'max(1, floor(3/2)) = 1');
});

test('sentiment: anything else (score 0, or between disliked and liked) is <watch>', () => {
  assert.equal(sentiment({ watching_status: 2, score: 0 }, 7), '<watch>');
  assert.equal(sentiment({ watching_status: 6, score: 4 }, 7), '<watch>');
  assert.equal(sentiment({ watching_status: 2, score: 6 }, 7), '<watch>');
});

test('history: only allowed statuses; anime without a semantic id are dropped and counted', () => {
  const c = counts();
  const user = {
    user_id: 1,
    rows: [watch(1, 1), watch(1, 2, { watching_status: 5 }), watch(1, 99), watch(1, 3), watch(1, 4), watch(1, 5)],
  };
  const history = userHistory(user, catalog, options, c);
  assert.deepEqual(
    history.rows.map((r) => r.anime_id),
    [1, 3, 4, 5],
  );
  assert.equal(history.eligible, true);
  assert.deepEqual(c, { unknown_anime_rows: 1, status_filtered_rows: 1 });
});

test('history: fewer than task_b_min_history rows left -> not eligible for Task B', () => {
  const history = userHistory(
    { user_id: 1, rows: [watch(1, 1), watch(1, 2), watch(1, 3), watch(1, 99)] },
    catalog,
    options,
    counts(),
  );
  assert.equal(history.eligible, false);
  assert.equal(history.rows.length, 3);
});

test(
  'history: sorted by scraped_at asc, status asc, score ' + 'desc, episodes desc, anime_id asc; the last max kept',
  () => {
    const rows = [
      watch(1, 8, { scraped_at: '2024-03-01' }),
      watch(1, 7, { scraped_at: '2024-01-01', watching_status: 3 }),
      watch(1, 6, { scraped_at: '2024-01-01', watching_status: 1, score: 5 }),
      watch(1, 5, { scraped_at: '2024-01-01', watching_status: 1, score: 9 }),
      watch(1, 4, { scraped_at: '2024-01-01', watching_status: 1, score: 5, watched_episodes: 12 }),
      watch(1, 3, { scraped_at: '2024-01-01', watching_status: 1, score: 5, watched_episodes: 12 }),
      watch(1, 2, { scraped_at: '2023-12-31' }),
    ];
    const all = userHistory({ user_id: 1, rows }, catalog, { ...options, max: 30 }, counts());
    assert.deepEqual(
      all.rows.map((r) => r.anime_id),
      [2, 5, 3, 4, 6, 7, 8],
    );
    const last = userHistory({ user_id: 1, rows }, catalog, { ...options, max: 4 }, counts());
    assert.deepEqual(
      last.rows.map((r) => r.anime_id),
      [4, 6, 7, 8],
    );
  },
);

test('mask: last -> len-1; random -> in [0, len-2]; a taken position is skipped; len < 2 -> none', () => {
  const keyed = new KeyedRandom(42, 'masks');
  assert.deepEqual(maskPositions(1, 5, ['last'], keyed), [['last', 4]]);
  for (let user = 0; user < 200; user++) {
    const [[mode, index]] = maskPositions(user, 5, ['random'], keyed) as [[string, number]];
    assert.equal(mode, 'random');
    assert.ok(index >= 0 && index <= 3, `index ${index}`);
  }
  assert.deepEqual(maskPositions(1, 2, ['random', 'last'], keyed), [
    ['random', 0],
    ['last', 1],
  ]);
  assert.deepEqual(maskPositions(1, 5, ['last', 'last'], keyed), [['last', 4]], 'the second last is already taken');
  assert.deepEqual(maskPositions(1, 1, ['last', 'random'], keyed), []);
});

test('mask: random positions hit every allowed index about equally', () => {
  const keyed = new KeyedRandom(42, 'masks');
  const hits = [0, 0, 0, 0];
  for (let user = 0; user < 4000; user++) hits[maskPositions(user, 5, ['random'], keyed)[0]![1]]!++;
  for (const h of hits) assert.ok(h > 850 && h < 1150, `hits ${hits.join(',')}`);
});

test('mask: the random position depends on the user id, not on arrival order or batch size', async () => {
  const histories: UserHistory[] = Array.from({ length: 50 }, (_, i) => ({
    user_id: 1000 + i,
    eligible: i % 7 !== 0,
    rows: Array.from({ length: 4 + (i % 9) }, (_, k) => watch(1000 + i, k + 1)),
  }));
  const run = async (rows: UserHistory[], size: number) => {
    const { rows: out } = await runNode<MaskedHistory>(
      maskNode,
      { task_b_mask_modes: ['last', 'random'] },
      { in: rebatch(rows, size) },
      { id: 'masks' },
    );
    return out.map((m) => `${m.user_id}:${m.mask_mode}:${m.mask_index}`).sort();
  };
  const reference = await run(histories, 4096);
  assert.equal(reference.length, 2 * histories.filter((h) => h.eligible).length);
  assert.deepEqual(await run(histories, 1), reference);
  assert.deepEqual(await run([...histories].reverse(), 7), reference);
});

test('prep-history: users as records, catalog as a side input; short users are passed on and counted', async () => {
  const users = [
    { user_id: 1, rows: [watch(1, 1), watch(1, 2), watch(1, 3), watch(1, 4)] },
    { user_id: 2, rows: [watch(2, 1, { score: 9 }), watch(2, 99)] },
    { user_id: 3, rows: [watch(3, 99)] },
  ];
  const { rows, stats } = await runNode<UserHistory>(
    historyNode,
    { task_b_allowed_statuses: [1, 2, 3, 4, 6], task_b_min_history: 4, task_b_max_history: 30 },
    { users: [users], catalog: [[...catalog.values()]] },
  );
  assert.deepEqual(
    rows.map((h) => [h.user_id, h.eligible, h.rows.length]),
    [
      [1, true, 4],
      [2, false, 1],
    ],
  );
  assert.equal(stats.short_history_users, 2);
  assert.equal(stats.eligible_users, 1);
  assert.equal(stats.unknown_anime_rows, 2);
});

test(
  'Task B rows assemble their JSON from ids already in JSON form: ' +
    'the shuffle writes what JSON.stringify would, odd ids included',
  async () => {
    const odd = ['<L1_"quoted">', '<L2_back\\slash>', '<L3_new\nline>', '<L4_é…>', '<L5_\u0001>', '<L6_plain>'];
    const oddCatalog = new Map([...catalog.values()].map((e, i) => [e.anime_id, { ...e, sid: odd[i % odd.length]! }]));
    const items = [1, 2, 3].map((user) =>
      taskBRow(
        {
          user_id: user,
          rows: [1, 2, 3, 4, 5, 6, 7].map((a) => watch(user, a, { score: a + user })),
          mask_mode: 'random',
          mask_index: user,
        },
        oddCatalog,
        7,
      ),
    );
    items.push(
      taskBRow(
        { user_id: 4, rows: [watch(4, 6), watch(4, 6, { watching_status: 4 })], mask_mode: 'last', mask_index: 1 },
        oddCatalog,
        7,
      ),
    );
    const { batches } = await runNode<PrepRow>(shuffleNode, {}, { in: [items] }, { batchSize: 3 });
    for (const batch of batches)
      assert.deepEqual(
        jsonLines(batch),
        batch.map((row) => JSON.stringify(row)),
      );
  },
);
