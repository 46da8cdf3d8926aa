import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import {
  BUNDLED_SEMANTIC_IDS,
  PLACEHOLDERS,
  SYNOPSIS_PLACEHOLDER,
  animeColumns,
  generateFixture,
  type GenerateFixtureOptions,
} from '../fixtures/generate-fixture.ts';

const fixturesDir = fileURLToPath(new URL('../fixtures/', import.meta.url));
const TEXT_COLUMNS = ['name', 'english_name', 'genres', 'synopsis', 'type', 'premiered', 'studios', 'source', 'rating'];

let dir: string;
let counter = 0;

function generate(opts: Omit<GenerateFixtureOptions, 'out'>): string {
  const out = join(dir, `db-${counter++}.sqlite`);
  generateFixture({ quiet: true, ...opts, out });
  return out;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function withDb<T>(path: string, fn: (db: Database.Database) => T): T {
  const db = new Database(path, { readonly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function artifactIds(): Set<number> {
  return new Set(
    readFileSync(BUNDLED_SEMANTIC_IDS, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => (JSON.parse(l) as { anime_id: number }).anime_id),
  );
}

/** Digest of every row of every table in key order: equal content whatever the SQLite version. */
function contentDigest(path: string): string {
  return withDb(path, (db) => {
    const hash = createHash('sha256');
    const tables = db
      .prepare("SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")
      .all() as Array<{ name: string; sql: string | null }>;
    for (const t of tables) hash.update(`${t.name}\n${t.sql ?? ''}\n`);
    for (const [table, key] of [
      ['anime', 'anime_id'],
      ['users', 'user_id'],
      ['user_anime', 'user_id, anime_id'],
    ] as const) {
      for (const row of db.prepare(`SELECT * FROM ${table} ORDER BY ${key}`).raw().iterate()) {
        hash.update(JSON.stringify(row) + '\n');
      }
    }
    return hash.digest('hex');
  });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'animind-fixture-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('generateFixture', () => {
  it('writes byte-identical files for identical options and different ones for another seed', () => {
    const opts = { users: 80, meanRowsPerUser: 20, seed: 7, withYear: true };
    const a = generate(opts);
    const b = generate(opts);
    assert.equal(sha256(a), sha256(b));
    assert.notEqual(sha256(generate({ ...opts, seed: 8 })), sha256(a));
  });

  it('keeps sequential off by default: the default output is unchanged by the option', () => {
    const opts = { users: 40, meanRowsPerUser: 12, seed: 3 };
    assert.equal(sha256(generate({ ...opts, sequential: false })), sha256(generate(opts)));
    assert.notEqual(sha256(generate({ ...opts, sequential: true })), sha256(generate(opts)));
  });

  it('with sequential, makes each history a run of the catalogue in id order, oldest first', () => {
    const db = generate({ users: 30, meanRowsPerUser: 8, extraAnime: 0, sequential: true });
    const catalogue = [...artifactIds()].sort((a, b) => a - b);
    withDb(db, (conn) => {
      const rows = conn
        .prepare('SELECT user_id, anime_id FROM user_anime ORDER BY user_id, scraped_at')
        .all() as Array<{ user_id: number; anime_id: number }>;
      for (let i = 1; i < rows.length; i++) {
        const [prev, row] = [rows[i - 1]!, rows[i]!];
        if (prev.user_id !== row.user_id) continue;
        const next = catalogue[(catalogue.indexOf(prev.anime_id) + 1) % catalogue.length];
        assert.equal(row.anime_id, next, `user ${row.user_id}: ${prev.anime_id} then ${row.anime_id}`);
      }
    });
  });

  it('leaves no temporary or journal files behind', () => {
    const own = join(dir, 'alone');
    mkdirSync(own);
    generateFixture({ out: join(own, 'only.sqlite'), quiet: true, users: 10 });
    assert.deepEqual(readdirSync(own), ['only.sqlite']);
  });

  it("uses the dataset builder's schema, with year only when asked", () => {
    for (const withYear of [false, true]) {
      withDb(generate({ users: 5, withYear }), (db) => {
        const cols = (table: string): string[] =>
          (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name);
        assert.deepEqual(cols('anime'), animeColumns(withYear));
        assert.equal(cols('anime').includes('year'), withYear);
        assert.deepEqual(cols('user_anime'), [
          'user_id',
          'anime_id',
          'score',
          'watching_status',
          'watched_episodes',
          'scraped_at',
        ]);
        const pk = (db.prepare('PRAGMA table_info(user_anime)').all() as Array<{ name: string; pk: number }>)
          .filter((c) => c.pk > 0)
          .sort((x, y) => x.pk - y.pk)
          .map((c) => c.name);
        assert.deepEqual(pk, ['user_id', 'anime_id']);
        const indexes = (db.prepare('PRAGMA index_list(user_anime)').all() as Array<{ name: string }>).map(
          (i) => i.name,
        );
        assert.ok(indexes.includes('idx_user_anime_anime_id'));
      });
    }
  });

  it('lets the Task B query stream in primary-key order without a sort', () => {
    withDb(generate({ users: 20 }), (db) => {
      const plan = db
        .prepare(
          'EXPLAIN QUERY PLAN SELECT user_id, anime_id, score, watching_status, watched_episodes, scraped_at ' +
            'FROM user_anime WHERE watching_status IN (1, 2, 3, 4, 6) ORDER BY user_id, anime_id',
        )
        .all() as Array<{ detail: string }>;
      assert.ok(!plan.some((p) => p.detail.includes('TEMP B-TREE')), JSON.stringify(plan));
    });
  });

  it('produces every watching_status class, every score and skewed row counts', () => {
    withDb(generate({ users: 300, meanRowsPerUser: 25 }), (db) => {
      const statuses = (
        db.prepare('SELECT DISTINCT watching_status s FROM user_anime ORDER BY s').all() as Array<{ s: number }>
      ).map((r) => r.s);
      assert.deepEqual(statuses, [0, 1, 2, 3, 4, 5, 6, 7]);
      const scores = (
        db.prepare('SELECT DISTINCT score s FROM user_anime ORDER BY s').all() as Array<{ s: number }>
      ).map((r) => r.s);
      assert.deepEqual(scores, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const perUser = (
        db.prepare('SELECT COUNT(*) n FROM user_anime GROUP BY user_id').all() as Array<{ n: number }>
      ).map((r) => r.n);
      assert.ok(
        perUser.some((n) => n < 4),
        'some users are too short for Task B',
      );
      assert.ok(Math.max(...perUser) > 4 * 25, 'a heavy tail of long lists');
      const ties = db
        .prepare(
          'SELECT COUNT(*) n FROM (SELECT user_id, scraped_at FROM user_anime GROUP BY 1, 2 HAVING COUNT(*) > 1)',
        )
        .get() as { n: number };
      assert.ok(ties.n > 0, 'scraped_at ties within a user');
      const top = db.prepare('SELECT COUNT(*) n FROM user_anime GROUP BY anime_id ORDER BY n DESC LIMIT 1').get() as {
        n: number;
      };
      assert.ok(top.n > 20 * (7500 / 871), 'popular anime far above the average');
    });
  });

  it('fills text columns with placeholders, messy lists and NULLs', () => {
    withDb(generate({ users: 5 }), (db) => {
      const values = new Set<string | null>();
      for (const col of TEXT_COLUMNS) {
        for (const r of db.prepare(`SELECT DISTINCT ${col} v FROM anime`).all() as Array<{ v: string | null }>)
          values.add(r.v);
      }
      for (const p of ['Unknown', 'unknown', 'N/A', 'None', '-', '', null, SYNOPSIS_PLACEHOLDER, ...PLACEHOLDERS]) {
        assert.ok(values.has(p), `placeholder ${JSON.stringify(p)} appears`);
      }
      const count = (where: string): number =>
        (db.prepare(`SELECT COUNT(*) n FROM anime WHERE ${where}`).get() as { n: number }).n;
      assert.ok(count("genres LIKE '%;%'") > 0, 'semicolon-separated genres');
      assert.ok(count("synopsis LIKE '%' || char(13, 10) || '%'") > 0, 'CRLF in synopsis');
      assert.ok(count("synopsis LIKE '%' || char(9) || '%'") > 0, 'tabs in synopsis');
      assert.ok(count(`synopsis LIKE '%"%'`) > 0 && count("synopsis LIKE '%''%'") > 0, 'both quote kinds');
      assert.ok(count("premiered GLOB '[A-Z]*[a-z] [0-9][0-9][0-9][0-9]'") > 0, 'Season YYYY premiered');
      assert.ok(count("english_name = 'Unknown'") > 100);
      const lists = (
        db.prepare('SELECT genres v FROM anime UNION ALL SELECT studios FROM anime').all() as Array<{
          v: string | null;
        }>
      )
        .filter((r) => r.v !== null)
        .map((r) => (r.v as string).split(/[,;]/).map((item) => item.trim()));
      assert.ok(
        lists.some((items) => items.length > 1 && items.includes('')),
        'empty list items',
      );
      assert.ok(
        lists.some((items) => new Set(items).size < items.length && !items.includes('')),
        'duplicate list items',
      );
    });
  });

  it('writes NULL and negative years when asked for a year column', () => {
    withDb(generate({ users: 5, withYear: true }), (db) => {
      const stats = db
        .prepare('SELECT SUM(year IS NULL) nulls, SUM(year < 0) negative, SUM(year > 1900) good FROM anime')
        .get() as Record<string, number>;
      assert.ok(stats.nulls! > 0 && stats.negative! > 0 && stats.good! > 0, JSON.stringify(stats));
    });
  });

  it('mixes anime without semantic ids and semantic ids without anime', () => {
    const ids = artifactIds();
    const result = generateFixture({ out: join(dir, 'mix.sqlite'), quiet: true, users: 200, extraAnime: 30 });
    withDb(result.out, (db) => {
      const animeIds = (db.prepare('SELECT anime_id id FROM anime').all() as Array<{ id: number }>).map((r) => r.id);
      const withoutSid = animeIds.filter((id) => !ids.has(id));
      assert.equal(withoutSid.length, 30);
      const rowIds = new Set(animeIds);
      const sidWithoutRow = [...ids].filter((id) => !rowIds.has(id));
      assert.ok(
        sidWithoutRow.length > 0 && sidWithoutRow.length < ids.size * 0.05,
        `${sidWithoutRow.length} ids without row`,
      );
      assert.equal(sidWithoutRow.length, result.semanticIdsWithoutAnime);
      let rowsWithoutSid = 0;
      for (const [animeId] of db.prepare('SELECT anime_id FROM user_anime').raw().iterate() as Iterable<[number]>) {
        if (!ids.has(animeId)) rowsWithoutSid++;
      }
      assert.ok(rowsWithoutSid > 0);
      assert.equal(rowsWithoutSid, result.rowsWithoutSemanticId);
    });
  });

  it('scales rows and users exactly with the options', () => {
    for (const [users, mean] of [
      [50, 10],
      [100, 10],
      [100, 30],
      [7, 3.5],
    ] as const) {
      const result = generateFixture({
        out: join(dir, `scale-${users}-${mean}.sqlite`),
        quiet: true,
        users,
        meanRowsPerUser: mean,
      });
      assert.equal(result.userAnimeRows, Math.round(users * mean));
      withDb(result.out, (db) => {
        const r = db
          .prepare('SELECT COUNT(*) n, COUNT(DISTINCT user_id) u, MAX(user_id) - MIN(user_id) + 1 span FROM user_anime')
          .get() as Record<string, number>;
        assert.equal(r.n, Math.round(users * mean));
        assert.equal(r.u, users);
        assert.ok(r.span! > users, 'user ids are not contiguous');
        assert.equal((db.prepare('SELECT COUNT(*) n FROM users').get() as { n: number }).n, users);
      });
    }
  });

  it('keeps anime rows independent of the user options', () => {
    const anime = (path: string): string =>
      withDb(path, (db) => JSON.stringify(db.prepare('SELECT * FROM anime ORDER BY anime_id').raw().all()));
    assert.equal(anime(generate({ users: 3 })), anime(generate({ users: 40, meanRowsPerUser: 9 })));
  });

  it('rejects impossible row counts and bad options', () => {
    assert.throws(
      () => generateFixture({ out: join(dir, 'x.sqlite'), quiet: true, users: 2, meanRowsPerUser: 10_000 }),
      /cannot place/,
    );
    assert.throws(() => generateFixture({ out: join(dir, 'x.sqlite'), quiet: true, users: 0 }), /users/);
    assert.throws(() => generateFixture({ out: join(dir, 'x.sqlite'), quiet: true, seed: 1.5 }), /seed/);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('x.sqlite')),
      [],
    );
  });

  it('matches the bundled databases (regenerate them as fixtures/README.md says if this fails)', () => {
    const cases: Array<[string, Omit<GenerateFixtureOptions, 'out'>]> = [
      ['anime.sqlite', { users: 300, meanRowsPerUser: 25, seed: 42 }],
      ['anime-with-year.sqlite', { users: 60, meanRowsPerUser: 25, seed: 42, withYear: true }],
    ];
    for (const [file, opts] of cases) {
      assert.equal(contentDigest(generate(opts)), contentDigest(join(fixturesDir, file)), file);
    }
  });
});
