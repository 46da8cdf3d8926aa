import assert from 'node:assert/strict';
import { test } from 'node:test';
import seedsNode, { likedAnime, userSeeds } from '../../transforms/prep/seeds.ts';
import {
  SINGLE_FALLBACK,
  singleReason,
  taskCRow,
  TRIPLE_FALLBACK,
  tripleReason,
} from '../../transforms/prep/task-c.ts';
import { madeRow, type AnimeInfo, type Seed, type UserHistory } from '../../transforms/prep/types.ts';
import { catalogOf, entry, runNode, watch } from './harness.ts';

const anime = (id: number, fields: Partial<AnimeInfo>) => entry(id, fields);

test('single: the first 3 genres joined as a phrase', () => {
  assert.equal(singleReason(anime(1, { genres: ['Action', 'Drama', 'Sci-Fi', 'Space'] })), 'Action, Drama, and Sci-Fi');
  assert.equal(singleReason(anime(1, { genres: ['Action', 'Drama'] })), 'Action and Drama');
});

test('single: "{type lowercased} storytelling"', () => {
  assert.equal(singleReason(anime(1, { type: 'TV' })), 'tv storytelling');
});

test('single: "{source lowercased}-inspired worldbuilding"', () => {
  assert.equal(singleReason(anime(1, { source: 'Light novel' })), 'light novel-inspired worldbuilding');
});

test('single: all clauses, in order, joined like a phrase', () => {
  assert.equal(
    singleReason(anime(1, { genres: ['Action'], type: 'Movie', source: 'Manga' })),
    'Action, movie storytelling, and manga-inspired worldbuilding',
  );
});

test('single: no clause -> the fallback', () => {
  assert.equal(singleReason(anime(1, {})), SINGLE_FALLBACK);
  assert.equal(singleReason(entry(1, null)), 'character-focused stories, strong atmosphere, and thematic depth');
});

test('triple: genres shared by all, sorted, up to 3, + " themes"', () => {
  const reason = tripleReason([
    anime(1, { genres: ['Sci-Fi', 'Drama', 'Action', 'Space'] }),
    anime(2, { genres: ['Action', 'Space', 'Drama', 'Sci-Fi'] }),
    anime(3, { genres: ['Space', 'Sci-Fi', 'Action', 'Drama', 'Mecha'] }),
  ]);
  assert.equal(reason, 'Action, Drama, and Sci-Fi themes');
});

test('triple: no shared genre -> the 3 most frequent (ties by first appearance) + " elements"', () => {
  const reason = tripleReason([
    anime(1, { genres: ['Comedy', 'Romance'] }),
    anime(2, { genres: ['Horror', 'Romance', 'Drama'] }),
    anime(3, { genres: ['Drama', 'Sports'] }),
  ]);
  assert.equal(reason, 'Romance, Drama, and Comedy elements');
});

test('triple: fewer than 3 genres in all, none shared -> every one of them, most frequent first', () => {
  const reason = tripleReason([
    anime(1, { genres: ['Comedy'] }),
    anime(2, { genres: ['Drama', 'Comedy'] }),
    anime(3, { genres: ['Drama', 'Drama'] }),
  ]);
  assert.equal(reason, 'Drama and Comedy elements');
});

test('triple: genres are compared only over the anime that have genres', () => {
  assert.equal(
    tripleReason([anime(1, { genres: ['Drama', 'Action'] }), anime(2, {}), anime(3, { genres: ['Action'] })]),
    'Action themes',
  );
});

test('triple: studios shared by all that have studios, sorted, up to 2, as "production style from …"', () => {
  const reason = tripleReason([
    anime(1, { studios: ['Sunrise', 'Bones', 'MAPPA'] }),
    anime(2, { studios: ['MAPPA', 'Bones', 'Sunrise'] }),
    anime(3, { studios: ['Bones', 'Sunrise', 'MAPPA'] }),
  ]);
  assert.equal(reason, 'production style from Bones and MAPPA');
  assert.equal(
    tripleReason([anime(1, { studios: ['Bones'] }), anime(2, { studios: ['MAPPA'] }), anime(3, {})]),
    TRIPLE_FALLBACK,
  );
});

test('triple: when only one of the three has studios, its studios count as shared', () => {
  assert.equal(
    tripleReason([anime(1, {}), anime(2, { studios: ['Sunrise', 'Bones'] }), anime(3, {})]),
    'production style from Bones and Sunrise',
  );
});

test('triple: years all equal -> "a similar {y} era tone"', () => {
  assert.equal(
    tripleReason([anime(1, { year: 1998 }), anime(2, { year: 1998 }), anime(3, {})]),
    'a similar 1998 era tone',
  );
});

test('triple: year span <= 6 -> "closely aligned {min}-{max} era pacing"; a wider span gives no clause', () => {
  assert.equal(
    tripleReason([anime(1, { year: 2004 }), anime(2, { year: 1998 }), anime(3, { year: 2001 })]),
    'closely aligned 1998-2004 era pacing',
  );
  assert.equal(
    tripleReason([anime(1, { year: 2005 }), anime(2, { year: 1998 }), anime(3, { year: 2001 })]),
    TRIPLE_FALLBACK,
  );
});

test('triple: exactly one distinct type -> "{type lowercased} storytelling rhythms"', () => {
  assert.equal(
    tripleReason([anime(1, { type: 'TV' }), anime(2, { type: 'TV' }), anime(3, {})]),
    'tv storytelling rhythms',
  );
  assert.equal(tripleReason([anime(1, { type: 'TV' }), anime(2, { type: 'Movie' }), anime(3, {})]), TRIPLE_FALLBACK);
});

test('triple: clauses in order (genres, studios, years, type), joined like a phrase', () => {
  const reason = tripleReason([
    anime(1, { genres: ['Action'], studios: ['Bones'], year: 2001, type: 'TV' }),
    anime(2, { genres: ['Action'], studios: ['Bones'], year: 2001, type: 'TV' }),
    anime(3, { genres: ['Action'], studios: ['Bones'], year: 2001, type: 'TV' }),
  ]);
  assert.equal(
    reason,
    'Action themes, production style from Bones, a similar 2001 era tone, and tv storytelling rhythms',
  );
});

test('triple: no clause -> the fallback', () => {
  assert.equal(
    tripleReason([entry(1, null), entry(2, null), entry(3, null)]),
    'overlapping tone, pacing, and character-driven conflicts',
  );
});

test('Task C rows: inputs, seed anime as anime_ids, the user as user_id, meta template and kind', () => {
  const catalog = catalogOf(anime(1, { type: 'TV' }), anime(2, {}), anime(3, {}));
  const single = taskCRow({ user_id: 5, kind: 'single', anime_ids: [1] }, catalog);
  assert.deepEqual(
    { key: single.key, row: madeRow(single.row) },
    {
      key: 'C:5:single',
      row: {
        task: 'C',
        input: '<S1> is interesting to fans of',
        output: 'tv storytelling',
        anime_ids: [1],
        user_id: 5,
        meta: { template_id: 'reasoning_single', kind: 'single' },
      },
    },
  );
  const triple = taskCRow({ user_id: 5, kind: 'triple', anime_ids: [2, 1, 3] }, catalog);
  assert.equal(triple.key, 'C:5:triple');
  assert.equal(
    madeRow(triple.row).input,
    'A user who liked <S2> and <S1> and <S3> would enjoy these anime because they share',
  );
  assert.deepEqual(madeRow(triple.row).meta, { template_id: 'reasoning_triple', kind: 'triple' });
});

test('seeds: liked = score >= min, by score desc then anime_id asc; >=1 -> single, >=3 -> triple', () => {
  const rows = [
    watch(1, 9, { score: 8 }),
    watch(1, 4, { score: 10 }),
    watch(1, 2, { score: 8 }),
    watch(1, 3, { score: 6 }),
    watch(1, 1, { score: 7 }),
  ];
  assert.deepEqual(likedAnime(rows, 7), [4, 2, 9, 1]);
  assert.deepEqual(userSeeds({ user_id: 1, eligible: true, rows }, 7), [
    { user_id: 1, kind: 'single', anime_ids: [4] },
    { user_id: 1, kind: 'triple', anime_ids: [4, 2, 9] },
  ]);
  assert.deepEqual(userSeeds({ user_id: 1, eligible: false, rows: rows.slice(0, 2) }, 7), [
    { user_id: 1, kind: 'single', anime_ids: [4] },
  ]);
  assert.deepEqual(userSeeds({ user_id: 1, eligible: false, rows: [watch(1, 3, { score: 6 })] }, 7), []);
});

test('prep-task-c-seeds: every user, short histories included, counted by kind', async () => {
  const histories: UserHistory[] = [
    {
      user_id: 1,
      eligible: true,
      rows: [watch(1, 1, { score: 9 }), watch(1, 2, { score: 9 }), watch(1, 3, { score: 8 }), watch(1, 4)],
    },
    { user_id: 2, eligible: false, rows: [watch(2, 1, { score: 7 })] },
  ];
  const { rows, stats } = await runNode<Seed>(seedsNode, { task_b_positive_score_min: 7 }, { in: [histories] });
  assert.deepEqual(
    rows.map((s) => `${s.user_id}:${s.kind}`),
    ['1:single', '1:triple', '2:single'],
  );
  assert.deepEqual(
    { single: stats.single, triple: stats.triple, users: stats.users_with_seed },
    { single: 2, triple: 1, users: 2 },
  );
});
