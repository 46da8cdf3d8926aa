import assert from 'node:assert/strict';
import { test } from 'node:test';
import groupUsers from '../../transforms/prep/group-users.ts';
import type { UserRecord } from '../../transforms/prep/types.ts';
import { rebatch, runNode, watch } from './harness.ts';

const rows = [
  watch(1, 10),
  watch(1, 11),
  watch(1, 12),
  watch(2, 10),
  watch(5, 3),
  watch(5, 4),
  watch(5, 9),
  watch(8, 1),
];
const shape = (users: UserRecord[]) => users.map((u) => [u.user_id, u.rows.map((r) => r.anime_id)]);

test('consecutive rows of a user become one record, whatever the batch boundaries', async () => {
  const expected = [
    [1, [10, 11, 12]],
    [2, [10]],
    [5, [3, 4, 9]],
    [8, [1]],
  ];
  for (const size of [1, 2, 3, 7, 4096]) {
    const { rows: users, stats } = await runNode<UserRecord>(groupUsers, {}, { in: rebatch(rows, size) });
    assert.deepEqual(shape(users), expected, `batch size ${size}`);
    assert.deepEqual({ users: stats.users, rows: stats.rows }, { users: 4, rows: 8 });
  }
});

test('no rows -> no users', async () => {
  const { rows: users, stats } = await runNode<UserRecord>(groupUsers, {}, { in: [] });
  assert.deepEqual(users, []);
  assert.equal(stats.users, 0);
});

test('rows out of user_id order are an error, not a silently split user', async () => {
  await assert.rejects(
    runNode(groupUsers, {}, { in: [[watch(2, 1), watch(1, 1)]] }),
    /ordered by user_id.*user 1 follows user 2/,
  );
});
