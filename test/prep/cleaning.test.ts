import assert from 'node:assert/strict';
import { test } from 'node:test';
import cleanAnimeNode, { cleanAnime } from '../../transforms/prep/clean-anime.ts';
import {
  cleanList,
  cleanText,
  isSynopsisPlaceholder,
  joinPhrase,
  yearFromColumn,
  yearFromText,
} from '../../transforms/prep/text.ts';
import { runNode } from './harness.ts';

test('whitespace runs (spaces, tabs, CR/LF) collapse to one space and ends are trimmed', () => {
  assert.equal(cleanText('  Cowboy \t\r\n  Bebop \n').value, 'Cowboy Bebop');
});

test('placeholders count as missing: Unknown in any case, N/A, None, -, empty', () => {
  for (const raw of ['Unknown', 'UNKNOWN', ' unknown ', 'N/A', 'None', '-', '', '  \t ']) {
    assert.deepEqual(cleanText(raw), { value: null, placeholders: 1 }, JSON.stringify(raw));
  }
  assert.deepEqual(cleanText(null), { value: null, placeholders: 0 }, 'SQL NULL is missing, not a placeholder');
  assert.equal(cleanText('Unknown Soldier').value, 'Unknown Soldier', 'only the whole value is a placeholder');
});

test('synopsis text starting "No synopsis information has been added" is missing', () => {
  assert.equal(
    isSynopsisPlaceholder('No synopsis information has been added to this title. Help improve our database'),
    true,
  );
  assert.equal(cleanText('No synopsis information has been added yet.', isSynopsisPlaceholder).value, null);
  assert.equal(cleanText('A bounty hunter story.', isSynopsisPlaceholder).value, 'A bounty hunter story.');
});

test('genres and studios split on , or ;, trim, drop empties and placeholders, de-duplicate keeping order', () => {
  assert.deepEqual(cleanList(' Action;Drama ,, Action; Unknown ;Sci-Fi ').value, ['Action', 'Drama', 'Sci-Fi']);
  assert.deepEqual(cleanList('Unknown'), { value: [], placeholders: 1 });
  assert.deepEqual(cleanList(''), { value: [], placeholders: 1 });
  assert.deepEqual(cleanList(null), { value: [], placeholders: 0 });
});

test(
  'year: the year column when it is a non-negative ' + 'integer, else the 4-digit year in premiered, else missing',
  () => {
    assert.equal(yearFromColumn(2001), 2001);
    assert.equal(yearFromColumn('1998'), 1998);
    for (const bad of [-1, 2001.5, null, 'Unknown', undefined])
      assert.equal(yearFromColumn(bad), undefined, String(bad));
    assert.equal(yearFromText('Spring 1998'), 1998);
    assert.equal(yearFromText('Fall 12345'), undefined, 'a 5-digit number holds no 4-digit year');
    assert.equal(yearFromText(null), undefined);
    const row = { anime_id: 1, premiered: 'Spring 1998' };
    assert.equal(cleanAnime({ ...row, year: 2001 }, {}).year, 2001);
    assert.equal(cleanAnime({ ...row, year: -3 }, {}).year, 1998, 'an invalid year column falls back to premiered');
    assert.equal(cleanAnime(row, {}).year, 1998, 'no year column: premiered');
    assert.equal(cleanAnime({ anime_id: 1, premiered: 'Unknown' }, {}).year, null);
  },
);

test('title is english_name, else name; both missing leaves no title', () => {
  assert.equal(
    cleanAnime({ anime_id: 1, name: 'Kaubōi Bibappu', english_name: 'Cowboy Bebop' }, {}).title,
    'Cowboy Bebop',
  );
  assert.equal(
    cleanAnime({ anime_id: 1, name: 'Kaubōi Bibappu', english_name: 'Unknown' }, {}).title,
    'Kaubōi Bibappu',
  );
  assert.equal(cleanAnime({ anime_id: 1, name: 'N/A', english_name: null }, {}).title, null);
});

test('phrase joining: one item as is, two with "and", three or more with commas and ", and"', () => {
  assert.equal(joinPhrase(['a']), 'a');
  assert.equal(joinPhrase(['a', 'b']), 'a and b');
  assert.equal(joinPhrase(['a', 'b', 'c']), 'a, b, and c');
  assert.equal(joinPhrase(['a', 'b', 'c', 'd']), 'a, b, c, and d');
});

test('prep-clean-anime counts the placeholders removed per field', async () => {
  const rows = [
    {
      anime_id: 1,
      name: 'Trigun',
      english_name: 'Unknown',
      genres: 'Action, Unknown',
      studios: 'None',
      synopsis: '',
      premiered: '-',
      type: 'TV',
      source: 'Manga',
    },
    {
      anime_id: 2,
      name: 'unknown',
      english_name: 'N/A',
      genres: null,
      studios: 'Madhouse',
      synopsis: 'Fine.',
      premiered: 'Fall 2005',
      type: 'Unknown',
      source: null,
    },
  ];
  const { rows: out, stats } = await runNode(cleanAnimeNode, {}, { in: [rows] });
  assert.deepEqual(stats.placeholders_removed, {
    name: 1,
    english_name: 2,
    genres: 1,
    studios: 1,
    synopsis: 1,
    premiered: 1,
    type: 1,
    source: 0,
  });
  assert.deepEqual(out[0], {
    anime_id: 1,
    title: 'Trigun',
    genres: ['Action'],
    studios: [],
    year: null,
    synopsis: null,
    type: 'TV',
    source: 'Manga',
  });
  assert.equal((out[1] as { year: number }).year, 2005);
});
