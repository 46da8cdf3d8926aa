import assert from 'node:assert/strict';
import { test } from 'node:test';
import catalogNode from '../../transforms/prep/catalog.ts';
import taskANode, { taskARows } from '../../transforms/prep/task-a.ts';
import { madeRow, type AnimeInfo, type CatalogEntry, type PoolItem } from '../../transforms/prep/types.ts';
import type { PrepRow } from '../../transforms/prep/prep-row.ts';
import shuffleNode from '../../transforms/prep/shuffle.ts';
import { jsonLines } from '../../sinks/json-lines.ts';
import { entry, info, runNode } from './harness.ts';

const full = entry(7, {
  title: 'Cowboy Bebop',
  genres: ['Action', 'Drama', 'Sci-Fi', 'Space'],
  studios: ['Sunrise', 'Bones'],
  year: 1998,
  synopsis: 'Space bounty hunters.',
}) as CatalogEntry & { info: AnimeInfo };

/** template_id -> [input, output] for one anime. */
const byTemplate = (items: PoolItem[]) =>
  Object.fromEntries(items.map((item) => madeRow(item.row)).map((r) => [r.meta.template_id, [r.input, r.output]]));
const only = (fields: Partial<AnimeInfo>) =>
  Object.keys(byTemplate(taskARows(entry(7, fields) as CatalogEntry & { info: AnimeInfo }, 12)));

test('sid_to_title: "The anime {SID} has the title" -> title, when there is a title', () => {
  assert.deepEqual(byTemplate(taskARows(full, 12)).sid_to_title, ['The anime <S7> has the title', 'Cowboy Bebop']);
  assert.ok(!only({ genres: ['Action'] }).includes('sid_to_title'));
});

test('title_to_sid: "The anime titled \'{title}\' has semantic id" -> SID, when there is a title', () => {
  assert.deepEqual(byTemplate(taskARows(full, 12)).title_to_sid, [
    "The anime titled 'Cowboy Bebop' has semantic id",
    '<S7>',
  ]);
  assert.deepEqual(only({ title: 'T' }), ['sid_to_title', 'title_to_sid']);
});

test('sid_to_genres: "The anime {SID} belongs to genres" -> all genres joined ", ", when there are genres', () => {
  assert.deepEqual(byTemplate(taskARows(full, 12)).sid_to_genres, [
    'The anime <S7> belongs to genres',
    'Action, Drama, Sci-Fi, Space',
  ]);
  assert.deepEqual(only({ genres: ['Action'] }), ['sid_to_genres', 'sid_to_themes']);
});

test(
  "title_to_genres: \"The anime titled '{title}' belongs " + 'to genres" -> genres, when there are a title and genres',
  () => {
    assert.deepEqual(byTemplate(taskARows(full, 12)).title_to_genres, [
      "The anime titled 'Cowboy Bebop' belongs to genres",
      'Action, Drama, Sci-Fi, Space',
    ]);
    assert.ok(only({ title: 'T', genres: ['Action'] }).includes('title_to_genres'));
    assert.ok(!only({ genres: ['Action'] }).includes('title_to_genres'));
  },
);

test('sid_to_studio: "The anime {SID} is produced by studio" -> studios joined ", ", when there are studios', () => {
  assert.deepEqual(byTemplate(taskARows(full, 12)).sid_to_studio, [
    'The anime <S7> is produced by studio',
    'Sunrise, Bones',
  ]);
  assert.deepEqual(only({ studios: ['Bones'] }), ['sid_to_studio']);
});

test(
  "title_studio_to_sid: \"The anime titled '{title}' by studio " +
    '{studios} has semantic id" -> SID, when there are a title and studios',
  () => {
    assert.deepEqual(byTemplate(taskARows(full, 12)).title_studio_to_sid, [
      "The anime titled 'Cowboy Bebop' by studio Sunrise, Bones has semantic id",
      '<S7>',
    ]);
    assert.ok(only({ title: 'T', studios: ['Bones'] }).includes('title_studio_to_sid'));
  },
);

test('sid_to_year: "The anime {SID} released in year" -> year, when there is a year', () => {
  assert.deepEqual(byTemplate(taskARows(full, 12)).sid_to_year, ['The anime <S7> released in year', '1998']);
  assert.deepEqual(only({ year: 2001 }), ['sid_to_year']);
});

test(
  "title_year_to_sid: \"The anime titled '{title}' released in " +
    '{year} has semantic id" -> SID, when there are a title and a year',
  () => {
    assert.deepEqual(byTemplate(taskARows(full, 12)).title_year_to_sid, [
      "The anime titled 'Cowboy Bebop' released in 1998 has semantic id",
      '<S7>',
    ]);
    assert.ok(only({ title: 'T', year: 2001 }).includes('title_year_to_sid'));
  },
);

test('sid_to_synopsis: "The anime {SID} synopsis:" -> synopsis, when there is a synopsis', () => {
  assert.deepEqual(byTemplate(taskARows(full, 12)).sid_to_synopsis, [
    'The anime <S7> synopsis:',
    'Space bounty hunters.',
  ]);
  assert.deepEqual(only({ synopsis: 'S' }), ['sid_to_synopsis']);
});

test('sid_to_themes: "The anime {SID} has notable themes" -> the first 3 genres, when there are genres', () => {
  assert.deepEqual(byTemplate(taskARows(full, 12)).sid_to_themes, [
    'The anime <S7> has notable themes',
    'Action, Drama, Sci-Fi',
  ]);
});

test('templates come in table order and only the first max_task_a_templates_per_anime are kept', () => {
  const ids = (max: number) => taskARows(full, max).map((i) => madeRow(i.row).meta.template_id);
  assert.deepEqual(ids(12), [
    'sid_to_title',
    'title_to_sid',
    'sid_to_genres',
    'title_to_genres',
    'sid_to_studio',
    'title_studio_to_sid',
    'sid_to_year',
    'title_year_to_sid',
    'sid_to_synopsis',
    'sid_to_themes',
  ]);
  assert.deepEqual(ids(3), ['sid_to_title', 'title_to_sid', 'sid_to_genres']);
  const [first] = taskARows(full, 1);
  assert.deepEqual(
    { key: first!.key, row: madeRow(first!.row) },
    {
      key: 'A:7:sid_to_title',
      row: {
        task: 'A',
        input: 'The anime <S7> has the title',
        output: 'Cowboy Bebop',
        anime_ids: [7],
        user_id: null,
        meta: { template_id: 'sid_to_title' },
      },
    },
  );
});

test('genres come from the anime row, else from the semantic-id row', async () => {
  const sidRow = (anime_id: number, genres: string | null) => ({
    anime_id,
    semantic_id: `<S${anime_id}>`,
    name: null,
    english_name: null,
    genres,
    tokens: [],
    codes: [],
  });
  const { rows } = await runNode<CatalogEntry>(
    catalogNode,
    {},
    {
      semantic_ids: [[sidRow(1, 'Comedy'), sidRow(2, 'Comedy; Unknown'), sidRow(3, 'Drama')]],
      anime: [[info(1, { genres: ['Action'] }), info(2)]],
    },
  );
  assert.deepEqual(
    rows.map((r) => [r.anime_id, r.genres, r.info !== null]),
    [
      [1, ['Action'], true],
      [2, ['Comedy'], true],
      [3, ['Drama'], false],
    ],
  );
});

test(
  'prep-task-a: only anime with a metadata row; ' + 'titleless anime are counted and get no title templates',
  async () => {
    const catalog = [full, entry(8, null), entry(9, { genres: ['Horror'] })];
    const { rows, stats } = await runNode<PoolItem>(
      taskANode,
      { max_task_a_templates_per_anime: 12 },
      { in: [catalog] },
    );
    assert.deepEqual(new Set(rows.map((r) => madeRow(r.row).anime_ids[0])), new Set([7, 9]));
    assert.equal(stats.anime, 2);
    assert.equal(stats.without_title, 1);
    assert.equal(stats.pool, 12);
    assert.equal((stats.templates as Record<string, number>).sid_to_genres, 2);
  },
);

test(
  'Task A rows write their JSON from escaped facts: the shuffle writes ' +
    'what JSON.stringify would of the rendered row, odd text included',
  async () => {
    const odd = entry(9, {
      title: 'Say "Hi" \\ Bye é…',
      genres: ['Tab\tGenre', 'Plain'],
      studios: ['Studio \u0001', 'Lone \ud800 Surrogate'],
      year: 2001,
      synopsis: 'A synopsis with "quotes", a back\\slash and emoji 🎬.',
    }) as CatalogEntry & { info: AnimeInfo };
    const items = [...taskARows(odd, 12), ...taskARows(full, 12)];
    const { batches, rows } = await runNode<PrepRow>(shuffleNode, {}, { in: [items] }, { batchSize: 4 });
    for (const batch of batches)
      assert.deepEqual(
        jsonLines(batch),
        batch.map((row) => JSON.stringify(row)),
      );
    const made = new Set(items.map((item) => JSON.stringify(madeRow(item.row))));
    for (const { example_id: _, ...row } of rows)
      assert.ok(made.has(JSON.stringify(row)), `${row.meta.template_id} differs from its rendered row`);
    assert.equal(rows.length, items.length);
  },
);
