import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { InterruptedError } from '../../engine/errors.ts';
import { createReporter, type Reporter } from '../../engine/progress.ts';
import { runPlan } from '../../engine/runtime.ts';
import { workerScript } from '../../engine/worker-script.ts';
import { loadTestPlan as loadPlan } from '../helpers/plan.ts';
import { waitUntil } from '../helpers/wait.ts';
import { generateFixture } from '../../fixtures/generate-fixture.ts';
import { HistoryScan } from '../../transforms/prep/user-histories/scan-pool.ts';
import userHistories from '../../transforms/prep/user-histories/user-histories.ts';
import { historyRow, userHistory, type HistoryCounts } from '../../transforms/prep/user-history.ts';
import type { CatalogEntry, UserHistory, WatchRow } from '../../transforms/prep/types.ts';
import { buildFixture, relaxUserAnime, withFixture, type Fixture } from './fixture-db.ts';
import { runNode } from './harness.ts';
import { writeReferencePipeline } from './reference-pipeline.ts';
import { PREP_YAML, ROOT, runPrepPipeline, tempDir } from './run-prep.ts';

process.env.ANIMIND_FIXED_TIME = '2026-01-01T00:00:00Z';

const BIG_ANIME = 2 ** 20 + 5;

/**
 * The test fixture with the user_anime constraints relaxed and values the rules accept (docs/prep.md,
 * "Bad values in user_anime") but the fast pass's packed keys cannot hold: statuses outside 0-63,
 * negative anime ids and one above 2^20, episode counts beyond 2^16 and NULL (ordered as 0), NULL
 * and separator-bearing scrape times, and users with many ties, a scrape time per row, and non-ASCII
 * scrape times whose UTF-8 and UTF-16 orders differ. Values the rules reject are in
 * user-anime-values.test.ts.
 */
function edgeFixture(dir: string): Fixture {
  mkdirSync(dir);
  const fixture = buildFixture(dir, { users: 80, maxRows: 30 });
  relaxUserAnime(fixture.database);
  const db = new Database(fixture.database);
  db.exec(`UPDATE user_anime SET watched_episodes = 70000 WHERE user_id = 4 AND anime_id % 2 = 0;
    UPDATE user_anime SET watching_status = -1 WHERE user_id = 7 AND anime_id % 3 = 0;
    UPDATE user_anime SET anime_id = -anime_id WHERE user_id = 10 AND anime_id % 2 = 1;
    UPDATE user_anime SET watched_episodes = ${2 ** 40} WHERE user_id = 13;
    UPDATE user_anime SET score = 10, watched_episodes = 65535 WHERE user_id = 16 AND anime_id % 2 = 0;
    UPDATE user_anime SET watching_status = 64 WHERE user_id = 19 AND anime_id % 4 = 0;
    UPDATE user_anime SET watched_episodes = NULL WHERE user_id = 22 AND anime_id % 4 = 1;
    UPDATE user_anime SET watching_status = 70 WHERE user_id = 25 AND anime_id % 3 = 1;
    UPDATE user_anime SET watching_status = 0 WHERE user_id = 28;
    UPDATE user_anime SET scraped_at = NULL WHERE user_id = 31 AND anime_id % 3 = 2;
    UPDATE user_anime SET scraped_at = '2024-02-01' || char(31) || 'x' WHERE user_id = 34 AND anime_id % 2 = 0;
    UPDATE user_anime SET watching_status = 5 WHERE user_id = 37;
    UPDATE user_anime SET scraped_at = '2024-03-01', watching_status = 2, score = 8, watched_episodes = 12
      WHERE user_id IN (40, 43, 46);
    UPDATE user_anime SET scraped_at = '2024-03-0' || (anime_id % 3) WHERE user_id IN (49, 52);
    UPDATE user_anime SET watched_episodes = NULL, scraped_at = NULL WHERE user_id = 61;
    UPDATE user_anime SET watched_episodes = CASE WHEN anime_id % 2 THEN NULL ELSE 0 END, score = 8,
      watching_status = 2, scraped_at = '2024-03-01' WHERE user_id = 64;
    UPDATE user_anime SET scraped_at = printf('2024-05-%04d', (anime_id * 7919) % 1000) WHERE user_id = 67;
    UPDATE user_anime SET scraped_at = CASE WHEN anime_id % 2 THEN 'ｘ' ELSE '𝑥' END WHERE user_id = 70;
    INSERT INTO user_anime VALUES
      (55, ${BIG_ANIME}, 9, 2, 1, '2024-02-01'), (58, ${BIG_ANIME}, 9, 2, 1, '2024-02-01');`);
  db.close();
  const sid = Array.from({ length: 8 }, (_, level) => `<L${level + 1}_9>`).join('');
  appendFileSync(fixture.semanticIds, JSON.stringify({ anime_id: BIG_ANIME, semantic_id: sid }) + '\n');
  return fixture;
}

/** The generic path's result, straight from the reference rules on rows read as sqlite-source reads them. */
function referenceHistories(database: string, knownIds: number[], allowed: number[]) {
  const db = new Database(database, { readonly: true });
  const rows = db
    .prepare(
      'SELECT user_id, anime_id, score, watching_status, watched_episodes, scraped_at ' +
        'FROM user_anime ORDER BY user_id, anime_id',
    )
    .all() as WatchRow[];
  db.close();
  const known = new Set(knownIds);
  const counts: HistoryCounts = { unknown_anime_rows: 0, status_filtered_rows: 0 };
  const options = { allowed: new Set(allowed), min: 4, max: 30 };
  const out: UserHistory[] = [];
  let users = 0;
  let eligible = 0;
  for (let i = 0; i < rows.length;) {
    let j = i;
    while (j < rows.length && rows[j]!.user_id === rows[i]!.user_id) j++;
    const history = userHistory({ user_id: rows[i]!.user_id, rows: rows.slice(i, j) }, known, options, counts);
    users++;
    if (history.eligible) eligible++;
    if (history.rows.length) out.push({ ...history, rows: history.rows.map(historyRow) });
    i = j;
  }
  return {
    histories: out,
    stats: { rows: rows.length, users, ...counts, short_history_users: users - eligible, eligible_users: eligible },
  };
}

const catalogOfIds = (file: string): CatalogEntry[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => ({
      anime_id: (JSON.parse(line) as { anime_id: number }).anime_id,
      sid: 'x',
      genres: [],
      info: null,
    }));

async function runFast(fixture: Fixture, options: Record<string, unknown>) {
  const catalog = catalogOfIds(fixture.semanticIds);
  return runNode<UserHistory>(
    userHistories,
    { database: fixture.database, ...options },
    { catalog: [catalog.slice(0, 10), catalog.slice(10)] },
    { id: 'history' },
  );
}

/** The outputs both user passes must write byte for byte, the held-out users' files among them. */
const COMPARED = ['llm_prep_train.jsonl', 'llm_prep_summary.json', 'llm_prep_valid.jsonl', 'llm_prep_test.jsonl'];

/** Runs a prep pipeline file on a fixture with pinned time; returns its byte-compared outputs. */
async function prepOutputs(pipeline: string, fixture: Fixture, params: Record<string, string> = {}) {
  const outDir = tempDir('user-pass-out');
  try {
    await runPrepPipeline(pipeline, fixture, outDir, params);
    return COMPARED.map((name) => readFileSync(path.join(outDir, name)));
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

describe('prep-user-histories: the fast user pass gives what the generic nodes give', () => {
  let dir: string;
  let reference: string;
  const fixtures: Record<string, Fixture> = {};
  before(() => {
    dir = tempDir('user-pass');
    reference = writeReferencePipeline(dir);
    fixtures.edge = edgeFixture(path.join(dir, 'edge'));
    fixtures.bundled = {
      database: path.join(ROOT, 'fixtures/anime.sqlite'),
      semanticIds: path.join(ROOT, 'fixtures/semantic_ids.jsonl'),
    };
    // Generated users mostly have several scrape sessions, and plan-to-watch rows tie on everything but anime_id.
    const generated = path.join(dir, 'generated.sqlite');
    generateFixture({ out: generated, users: 400, meanRowsPerUser: 60, seed: 7, quiet: true });
    fixtures.generated = { database: generated, semanticIds: fixtures.bundled.semanticIds };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const name of ['edge', 'generated', 'bundled']) {
    test(`${name} database: same histories and counters for 0-3 and auto workers, ranges, users a read`, async () => {
      const fixture = fixtures[name]!;
      const allowed = name === 'edge' ? [0, 1, 2, 3, 4, 6] : [1, 2, 3, 4, 6];
      const expected = referenceHistories(
        fixture.database,
        catalogOfIds(fixture.semanticIds).map((e) => e.anime_id),
        allowed,
      );
      for (const [workers, ranges, users_per_read] of [
        [0, 1, 512],
        [0, 7, 512],
        [0, 2, 1],
        [1, 3, 512],
        [1, 1, 7],
        [2, 256, 512],
        [2, 5, 3],
        [3, 5, 512],
        ['auto', 2, 512],
      ] as const) {
        const { rows, stats } = await runFast(fixture, {
          workers,
          ranges,
          users_per_read,
          task_b_allowed_statuses: allowed,
        });
        const what = `workers ${workers}, ranges ${ranges}, users a read ${users_per_read}`;
        assert.deepEqual(rows, expected.histories, what);
        assert.deepEqual(stats, expected.stats, what);
      }
    });
  }

  test('Ctrl-C during the scan stops its worker threads and leaves no output', async () => {
    // Linux lists a process's threads; elsewhere the run must still stop and clean up.
    const threads = () => (existsSync('/proc/self/task') ? readdirSync('/proc/self/task').length : 0);
    // The scan's workers load a script bundled by esbuild, whose synchronous API starts a thread of
    // its own on first use and keeps it for the life of the process: started here, before the
    // count, it is not taken for a worker left running (run alone, this test was always one over).
    workerScript(new URL('../../transforms/prep/user-histories/scan-worker.ts', import.meta.url));
    const before = threads();
    const controller = new AbortController();
    const quiet = createReporter({ mode: 'quiet', format: 'text' });
    // Interrupts as soon as the first user-id range has been read, while the others are in flight.
    const reporter: Reporter = {
      ...quiet,
      forNode: (node) => ({
        ...quiet.forNode(node),
        counter: () => ({
          add: () => node === 'history' && controller.abort(new InterruptedError('SIGINT')),
          setTotal() {},
          done() {},
        }),
      }),
    };
    const outDir = tempDir('user-pass-interrupted');
    const plan = await loadPlan(PREP_YAML, {
      database: fixtures.generated!.database,
      semantic_ids: fixtures.generated!.semanticIds,
      out_dir: outDir,
    });
    await assert.rejects(runPlan(plan, { reporter, signal: controller.signal }), InterruptedError);
    // The run can reject before its worker threads are gone (right after it, one is often still
    // there), and on a loaded machine one outlived the 200 ms this test used to wait. The count is
    // watched until it is back; a thread that never leaves fails the test at the deadline.
    const counts = () => `the scan's worker threads to exit: threads before ${before}, now ${threads()}`;
    await waitUntil(() => threads() <= before, counts);
    assert.deepEqual(existsSync(outDir) ? readdirSync(outDir) : [], []);
    rmSync(outDir, { recursive: true, force: true });
  });

  for (const name of ['edge', 'generated', 'bundled']) {
    test(`${name} database: prep.yaml and the generic reference pipeline write the same bytes`, async () => {
      // Shares above the defaults, so even the smaller databases hold users out of training.
      const params: Record<string, string> = {
        holdout_valid: '0.1',
        holdout_test: '0.1',
        ...(name === 'edge' ? { task_b_allowed_statuses: '0,1,2,3,4,6' } : {}),
      };
      const fast = await prepOutputs(PREP_YAML, fixtures[name]!, params);
      const ref = await prepOutputs(reference, fixtures[name]!, params);
      COMPARED.forEach((file, i) => assert.ok(fast[i]!.equals(ref[i]!), `${file} differs`));
      // The split holds users out of these databases, so the comparison covers the held-out files' bytes.
      assert.ok(fast[2]!.length > 0 && fast[3]!.length > 0, 'no user was held out');
    });
  }
});

test('a range holding most user ids is read a few users at a time, in order', async () => {
  await withFixture('user-pass-bunched', 12, async (fixture) => {
    const db = new Database(fixture.database);
    db.pragma('foreign_keys = OFF');
    // One stray id: the ranges are equal spans of ids, so every other user falls in the first.
    db.prepare(
      `INSERT INTO user_anime SELECT ${2 ** 40}, anime_id, score, watching_status, watched_episodes, scraped_at ` +
        'FROM user_anime WHERE user_id = 1',
    ).run();
    const users = db.prepare('SELECT DISTINCT user_id FROM user_anime ORDER BY user_id').pluck().all();
    db.close();
    const request = {
      allowedStatuses: [1, 2, 3, 4, 6],
      min: 4,
      max: 30,
      knownIds: catalogOfIds(fixture.semanticIds).map((e) => e.anime_id),
    };
    const scan = async (workers: number) => {
      const reads: { users: number; ends: boolean }[] = [];
      const ids: number[] = [];
      for await (const chunk of new HistoryScan(fixture.database, workers, 5).chunks(request, 4)) {
        reads.push({ users: chunk.users, ends: chunk.endsRange });
        ids.push(...chunk.userIds);
      }
      assert.deepEqual(ids, users, `workers ${workers}: every user once, in order`);
      return reads;
    };
    // On the calling thread, the first range goes on read after read; the two middle ranges are empty.
    assert.deepEqual(await scan(0), [
      { users: 5, ends: false },
      { users: 5, ends: false },
      { users: 2, ends: true },
      { users: 0, ends: true },
      { users: 0, ends: true },
      { users: 1, ends: true },
    ]);
    // On workers, what is left of a range after a full read is halved by id, so both workers read it.
    const reads = await scan(2);
    assert.ok(reads.length > 6 && reads.every((read) => read.users <= 5), JSON.stringify(reads));
    assert.equal(reads.filter((read) => read.ends).length, 4, 'each range ends once, with its last read');
    assert.equal(reads.at(-1)!.ends, true);
  });
});
