import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { DataError } from '../../engine/errors.ts';
import { runCli } from '../helpers/cli.ts';
import { buildFixture, relaxUserAnime, type Fixture } from './fixture-db.ts';
import { writeReferencePipeline } from './reference-pipeline.ts';
import { PREP_YAML, readRows, runPrepPipeline, tempDir } from './run-prep.ts';

process.env.ANIMIND_FIXED_TIME = '2026-01-01T00:00:00Z';

/**
 * docs/prep.md, "Bad values in user_anime": a value its column does not allow stops the run with
 * one line naming the table, the column, the user (and anime), the value as SQL writes it and what
 * was expected. prep.yaml's fast user pass and the generic reference nodes (sqlite-source,
 * prep-group-users, prep-history) apply the same rules, so each case is run on both.
 *
 * Each case edits user 1000, added to the test fixture with anime 1-6, all valid.
 */
const USER = 1000;

interface BadValue {
  what: string;
  /** SQL run on the fixture's relaxed user_anime. */
  edit: string;
  /** The error's message (the CLI prints it after the node's name). */
  says: string;
  /** What the reference says where it differs: sqlite-source reads ids past 2^53 - 1 rounded. */
  referenceSays?: string;
  /**
   * Run on the fast pass's worker threads too (they hand errors back as text), not only on the
   * main thread: once for a value the reference rules find in a user read row by row, once for a
   * user_id found in a range. A worker starts in ~1.5 s, so not for every case.
   */
  onWorkers?: true;
}

const valueOf = (column: string, value: string, anime = 3) =>
  `UPDATE user_anime SET ${column} = ${value} WHERE user_id = ${USER} AND anime_id = ${anime}`;
const found = (column: string, value: string, expected: string, anime: number | null = 3) =>
  `table 'user_anime', column '${column}', user ${USER}${anime === null ? '' : `, anime ${anime}`}: ` +
  `found ${value}, expected ${expected}`;
const SCORE = 'an integer from 0 to 10';
const EPISODES = 'an integer of 0 or more, or NULL';
const ID_RANGE =
  'an integer from -9007199254740991 to 9007199254740991 (2^53 - 1, the largest id a JSON number holds exactly)';
const userIdIs = (value: string) => `UPDATE user_anime SET user_id = ${value} WHERE user_id = ${USER}`;
const badUserId = (value: string) => `table 'user_anime', column 'user_id': found ${value}, expected ${ID_RANGE}`;

const CASES: BadValue[] = [
  { what: 'a text score', edit: valueOf('score', "'high'"), says: found('score', "'high'", SCORE), onWorkers: true },
  { what: 'a score above 10', edit: valueOf('score', '99'), says: found('score', '99', SCORE) },
  {
    what: 'a score of 11, which the fast pass could pack',
    edit: valueOf('score', '11'),
    says: found('score', '11', SCORE),
  },
  { what: 'a fractional score', edit: valueOf('score', '7.5'), says: found('score', '7.5', SCORE) },
  { what: 'a negative score', edit: valueOf('score', '-1'), says: found('score', '-1', SCORE) },
  { what: 'a NULL score', edit: valueOf('score', 'NULL'), says: found('score', 'NULL', SCORE) },
  {
    what: 'a text watching_status',
    edit: valueOf('watching_status', "'completed'"),
    says: found('watching_status', "'completed'", 'an integer'),
  },
  {
    what: 'a NULL watching_status',
    edit: valueOf('watching_status', 'NULL'),
    says: found('watching_status', 'NULL', 'an integer'),
  },
  {
    what: 'negative watched_episodes',
    edit: valueOf('watched_episodes', '-3'),
    says: found('watched_episodes', '-3', EPISODES),
  },
  {
    what: 'text watched_episodes',
    edit: valueOf('watched_episodes', "'twelve'"),
    says: found('watched_episodes', "'twelve'", EPISODES),
  },
  {
    what: 'a text anime_id',
    edit: valueOf('anime_id', "'x3'"),
    says: found('anime_id', "'x3'", ID_RANGE, null),
  },
  {
    what: 'a NULL anime_id',
    edit: valueOf('anime_id', 'NULL'),
    says: found('anime_id', 'NULL', ID_RANGE, null),
  },
  {
    what: 'an anime_id of 2^53',
    edit: valueOf('anime_id', String(2 ** 53)),
    says: found('anime_id', '9007199254740992', ID_RANGE, null),
  },
  {
    // A number would not do: the column's TEXT affinity stores 20240101 as the text '20240101'.
    what: 'a blob as scraped_at',
    edit: valueOf('scraped_at', "X'323032342D3031'"),
    says: found('scraped_at', "X'323032342D3031'", 'text (an ISO time) or NULL'),
  },
  { what: 'a text user_id', edit: userIdIs("'u1000'"), says: badUserId("'u1000'") },
  { what: 'a NULL user_id', edit: userIdIs('NULL'), says: badUserId('NULL') },
  { what: 'a fractional user_id', edit: userIdIs('1000.5'), says: badUserId('1000.5'), onWorkers: true },
  {
    what: 'a user_id of 2^53 + 1, named exactly',
    edit: userIdIs('9007199254740993'),
    says: badUserId('9007199254740993'),
    referenceSays: badUserId('9007199254740992'),
  },
  {
    what: 'a user_id of -(2^53 + 1)',
    edit: userIdIs('-9007199254740993'),
    says: badUserId('-9007199254740993'),
    referenceSays: badUserId('-9007199254740992'),
  },
];

/** The test fixture with user 1000 added (anime 1-6, all valid), then `edit` run on its relaxed user_anime. */
function fixtureWith(dir: string, edit: string): Fixture {
  const fixture = buildFixture(dir, { users: 12 });
  relaxUserAnime(fixture.database);
  const db = new Database(fixture.database);
  const insert = db.prepare('INSERT INTO user_anime VALUES (?, ?, ?, ?, ?, ?)');
  for (let anime = 1; anime <= 6; anime++) insert.run(USER, anime, anime + 4, 2, 12, `2024-02-0${anime}T00:00:00`);
  db.exec(edit);
  db.close();
  return fixture;
}

describe('a bad value in user_anime stops both user passes with the same line', () => {
  let dir: string;
  let reference: string;
  before(() => {
    dir = tempDir('bad-values');
    reference = writeReferencePipeline(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [i, c] of CASES.entries()) {
    test(c.what, async () => {
      const caseDir = path.join(dir, String(i));
      mkdirSync(caseDir);
      const fixture = fixtureWith(caseDir, c.edit);
      const rejects = (message: string) => (error: unknown) => {
        assert.ok(error instanceof DataError, String(error));
        assert.equal(error.message, message);
        assert.equal(error.exitCode, 1);
        return true;
      };
      for (const workers of c.onWorkers ? ['0', '2'] : ['0'])
        await assert.rejects(
          runPrepPipeline(PREP_YAML, fixture, path.join(caseDir, `fast-${workers}`), { scan_workers: workers }),
          rejects(c.says),
          `prep.yaml, scan_workers ${workers}`,
        );
      await assert.rejects(
        runPrepPipeline(reference, fixture, path.join(caseDir, 'reference')),
        rejects(c.referenceSays ?? c.says),
        'the reference pipeline',
      );
    });
  }
});

describe('the CLI prints a bad value as one line, exits 1 and writes nothing', { concurrency: 2 }, () => {
  for (const [what, edit, line] of [
    ['a text score', valueOf('score', "'high'"), found('score', "'high'", SCORE)],
    ['a user_id of 2^53 + 1', userIdIs('9007199254740993'), badUserId('9007199254740993')],
  ] as const) {
    test(what, async (t) => {
      const dir = tempDir('bad-value-cli');
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const fixture = fixtureWith(dir, edit);
      const outDir = path.join(dir, 'out');
      const sets = { database: fixture.database, semantic_ids: fixture.semanticIds, out_dir: outDir };
      const { code, stdout, stderr } = await runCli([
        'pipeline',
        'run',
        PREP_YAML,
        '--quiet',
        ...Object.entries(sets).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
      ]);
      assert.deepEqual(stderr.split('\n').filter(Boolean), [`error: node 'history': ${line}`]);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.deepEqual(existsSync(outDir) ? readdirSync(outDir) : [], [], 'no partial output');
    });
  }
});

test('values the rules allow but the fast pass cannot pack give what the reference gives', async (t) => {
  const dir = tempDir('odd-values');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // NULL episodes (ordered as 0), a status outside the allowed list (filtered and counted), a NULL scrape time.
  const fixture = fixtureWith(
    dir,
    `${valueOf('watched_episodes', 'NULL', 2)}; ${valueOf('watching_status', '70', 4)}; ` +
      valueOf('scraped_at', 'NULL', 5),
  );
  const fast = readRows(await runPrepPipeline(PREP_YAML, fixture, path.join(dir, 'fast')));
  const generic = readRows(await runPrepPipeline(writeReferencePipeline(dir), fixture, path.join(dir, 'reference')));
  assert.deepEqual(fast, generic);
  assert.ok(fast.some((row) => row.user_id === USER));
});

test('user ids up to 2^53 - 1 either way are read, and written, exactly', async (t) => {
  const dir = tempDir('large-ids');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const largest = Number.MAX_SAFE_INTEGER;
  // 2^53 - 1 and 2^53 - 2 are two users, not one: a pass reading ids past 2^53 would round them together.
  const fixture = fixtureWith(
    dir,
    `${userIdIs(String(largest))}; INSERT INTO user_anime SELECT ${largest - 1}, anime_id, score, watching_status, ` +
      `watched_episodes, scraped_at FROM user_anime WHERE user_id = ${largest};` +
      `INSERT INTO user_anime SELECT -${largest}, anime_id, score, watching_status, watched_episodes, scraped_at ` +
      `FROM user_anime WHERE user_id = ${largest}`,
  );
  for (const pipeline of [PREP_YAML, writeReferencePipeline(dir)]) {
    const rows = readRows(await runPrepPipeline(pipeline, fixture, path.join(dir, path.basename(pipeline, '.yaml'))));
    const ids = new Set(rows.map((row) => row.user_id));
    for (const id of [largest, largest - 1, -largest]) assert.ok(ids.has(id), `${pipeline}: user ${id} written`);
  }
});
