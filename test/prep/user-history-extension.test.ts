import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { HISTORY_EXTENSION, historySql, loadHistoryRules } from '../../transforms/prep/user-histories/history-query.ts';
import { RangeScanner, unpackEntry } from '../../transforms/prep/user-histories/scan-chunk.ts';
import { historyRow, userHistory, type HistoryCounts } from '../../transforms/prep/user-history.ts';
import type { WatchRow } from '../../transforms/prep/types.ts';

/** [user_id, anime_id, score, watching_status, watched_episodes, scraped_at] */
type Row = [number, number, unknown, unknown, unknown, unknown];

/**
 * A connection with the extension, statuses 1 and 2 allowed, anime
 * 10-14 in the catalog, histories of 2 to 3 rows by default.
 */
function database(rows: Row[], bounds = { min: 2, max: 3 }) {
  const db = new Database(':memory:');
  // Declared types without NOT NULL or CHECKs, so odd values get in; INTEGER affinity stores bound numbers as integers.
  db.exec(`CREATE TABLE user_anime (user_id INTEGER, anime_id INTEGER, score INTEGER, watching_status INTEGER,
    watched_episodes INTEGER, scraped_at TEXT, PRIMARY KEY (user_id, anime_id))`);
  const insert = db.prepare('INSERT INTO user_anime VALUES (?, ?, ?, ?, ?, ?)');
  for (const row of rows) insert.run(...row);
  loadHistoryRules(db, { allowedStatuses: [1, 2], knownIds: [10, 11, 12, 13, 14], ...bounds }, HISTORY_EXTENSION);
  return db;
}

/** Each user's row of historySql, its blob decoded: filtered counts, kept count and the entries as history rows. */
function histories(db: Database.Database) {
  return (db.prepare(historySql()).raw(true).all(-1e15, 1e15, -1) as [number, number, Buffer | null][]).map(
    ([user, count, blob]) => {
      if (blob === null) return { user, count, exact: true };
      const [statusFiltered, unknown, kept, ...entries] = new Float64Array(new Uint8Array(blob).buffer);
      return { user, count, statusFiltered, unknown, kept, rows: entries.map(unpackEntry) };
    },
  );
}

test(
  'user_history keeps the last `max` rows in history order: ' +
    'scrape time, then status, score desc, episodes desc, anime_id',
  () => {
    const db = database([
      [1, 10, 5, 2, 3, '2024-02'],
      [1, 11, 9, 2, 1, '2024-01'],
      [1, 12, 9, 1, 0, '2024-02'],
      [1, 13, 5, 2, 7, '2024-02'],
      [1, 14, 8, 6, 1, '2024-02'],
      [1, 20, 8, 1, 1, '2024-02'],
    ]);
    assert.deepEqual(histories(db), [
      {
        user: 1,
        count: 6,
        statusFiltered: 1,
        unknown: 1,
        kept: 4,
        // 11 is the earliest scrape, so it is the one cut; then
        // status 1 before 2, and episodes 7 before 3 at equal scores.
        rows: [
          { anime_id: 12, watching_status: 1, score: 9 },
          { anime_id: 13, watching_status: 2, score: 5 },
          { anime_id: 10, watching_status: 2, score: 5 },
        ],
      },
    ]);
    db.close();
  },
);

test('user_history passes a history shorter than `min` on whole, in table order', () => {
  const db = database([
    [2, 13, 9, 2, 1, '2024-01'],
    [2, 14, 3, 1, 1, '2024-02'],
    [2, 15, 3, 1, 1, '2024-02'],
  ]);
  assert.deepEqual(histories(db), [
    {
      user: 2,
      count: 3,
      statusFiltered: 0,
      unknown: 1,
      kept: 2,
      rows: [
        { anime_id: 13, watching_status: 2, score: 9 },
        { anime_id: 14, watching_status: 1, score: 3 },
      ],
    },
  ]);
  db.close();
});

test('user_history gives NULL, for the reference rules, for a user with a value it cannot be sure of', () => {
  const exact: Row[] = [
    [3, 10, 2000, 2, 1, '2024-01'],
    [4, 10, 7.5, 2, 1, '2024-01'],
    [5, 10, 'high', 2, 1, '2024-01'],
    [6, 10, 8, 2, null, '2024-01'],
    [7, 10, 8, 64, 1, '2024-01'],
    [8, 10, 8, 2, 1, null],
    [9, 10, 8, 2, 1, 'ｘ'],
    [10, 2 ** 20, 8, 2, 1, '2024-01'],
    // Packed as easily as 10, but the rules reject a score above 10 (docs/prep.md, "Bad values in user_anime").
    [11, 10, 11, 2, 1, '2024-01'],
  ];
  const db = database([...exact, [12, 10, 10, 2, 1, '2024-01']]);
  assert.deepEqual(
    histories(db).map((h) => [h.user, 'exact' in h]),
    [...exact.map(([user]) => [user, true]), [12, false]],
  );
  db.close();
});

test('user_history takes bounds beyond a C int as no bound', () => {
  const rows: Row[] = [10, 11, 12, 13].map((anime) => [1, anime, 5, 2, 1, '2024-01']);
  const db = database(rows, { min: 1, max: 2 ** 40 });
  assert.deepEqual(
    histories(db).map((h) => h.rows?.map((r) => r.anime_id)),
    [[10, 11, 12, 13]],
  );
  db.close();
});

test(
  'user_history agrees with the reference rules on random ' + 'users: long histories, many scrape times, every bound',
  () => {
    let seed = 11;
    const random = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
    const db = new Database(':memory:');
    db.exec(`CREATE TABLE user_anime (user_id INTEGER, anime_id INTEGER, score INTEGER, watching_status INTEGER,
    watched_episodes INTEGER, scraped_at TEXT, PRIMARY KEY (user_id, anime_id))`);
    const insert = db.prepare('INSERT INTO user_anime VALUES (?, ?, ?, ?, ?, ?)');
    for (let user = 1; user <= 300; user++) {
      const stamps = 1 + random(user % 10 === 0 ? 40 : 4);
      // Few distinct scores and episodes, so ties fall through to the later keys.
      for (const anime of new Set(Array.from({ length: random(user % 7 === 0 ? 900 : 120) }, () => random(2000))))
        insert.run(
          user,
          anime,
          random(11),
          random(8),
          random(5) * 12,
          `2024-03-${String(random(stamps)).padStart(2, '0')}`,
        );
    }
    const rows = db.prepare('SELECT * FROM user_anime ORDER BY user_id, anime_id').all() as WatchRow[];
    const knownIds = Array.from({ length: 2000 }, (_, i) => i).filter((i) => i % 9 !== 0);
    const allowedStatuses = [1, 2, 3, 4, 6];
    for (const [min, max] of [
      [1, 1],
      [5, 30],
      [40, 200],
      [1, 10_000],
    ]) {
      const chunk = new RangeScanner(db, { allowedStatuses, knownIds, min: min!, max: max! }, HISTORY_EXTENSION).scan(
        0,
        1e9,
      );
      assert.equal(chunk.exact.length, 0);
      const counts: HistoryCounts = { unknown_anime_rows: 0, status_filtered_rows: 0 };
      const options = { allowed: new Set(allowedStatuses), min: min!, max: max! };
      for (let i = 0; i < chunk.users; i++) {
        const userId = chunk.userIds[i]!;
        const expected = userHistory(
          { user_id: userId, rows: rows.filter((r) => r.user_id === userId) },
          new Set(knownIds),
          options,
          counts,
        );
        const got = Array.from(chunk.entries.subarray(chunk.offsets[i], chunk.offsets[i + 1]), unpackEntry);
        assert.deepEqual(
          [chunk.eligible[i] === 1, got],
          [expected.eligible, expected.rows.map(historyRow)],
          `user ${userId}, min ${min}, max ${max}`,
        );
      }
      assert.deepEqual(
        [chunk.counts.unknown_anime_rows, chunk.counts.status_filtered_rows],
        [counts.unknown_anime_rows, counts.status_filtered_rows],
      );
    }
    db.close();
  },
);
