import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { hash53 } from '../../engine/random.ts';

/**
 * A small database in the dataset builder's layout (no `year` column unless asked), full of the
 * placeholders the real data has, built in the test itself so goldens do not move when the
 * bundled fixtures are regenerated. Every value is a hash of (what, index): no state, no clock.
 */
export interface FixtureOptions {
  users?: number;
  /** Largest number of user_anime rows one user gets. */
  maxRows?: number;
  withYear?: boolean;
  /**
   * Every user gets user 1's watches (same anime, scores, statuses and times), so every kept
   * history is the same: a held-out user's (history, target) is then every other user's too.
   */
  sameWatches?: boolean;
}

export interface Fixture {
  database: string;
  semanticIds: string;
}

export const SYNOPSIS_PLACEHOLDER =
  'No synopsis information has been added to this title. Help improve our database by adding a synopsis here.';
/** Anime 1–38 have a semantic id and a row; 39–40 only a row; 41–42 only a semantic id. */
const ANIME_ROWS = 40;
const SID_IDS = [...Array.from({ length: 38 }, (_, i) => i + 1), 41, 42];
const GENRES = ['Action', 'Drama', 'Comedy', 'Sci-Fi', 'Romance', 'Fantasy', 'Horror', 'Mecha'];
const STUDIOS = ['Sunrise', 'Bones', 'Madhouse', 'MAPPA', 'Kyoto Animation'];
const TYPES = ['TV', 'Movie', 'OVA'];
const SOURCES = ['Manga', 'Original', 'Light novel'];
const SEASONS = ['Spring', 'Summer', 'Fall', 'Winter'];
const STATUSES = [1, 2, 2, 2, 3, 4, 6, 5, 7];

const pick = (what: string, i: number, n: number) => hash53(`${what}:${i}`) % n;
const choose = <T>(what: string, i: number, list: readonly T[]) => list[pick(what, i, list.length)]!;

function genres(id: number): string | null {
  if (id % 10 === 7) return null;
  if (id % 10 === 3) return 'Unknown';
  const count = 1 + pick('genre-count', id, 4);
  const list = Array.from({ length: count }, (_, k) => choose('genre', id * 10 + k, GENRES));
  if (id % 4 === 1) list.splice(1, 0, 'Unknown', '');
  return list.join(id % 2 ? ', ' : ';');
}

function animeRow(id: number, withYear: boolean): Record<string, unknown> {
  const titleless = id % 13 === 0;
  return {
    anime_id: id,
    name: titleless ? 'Unknown' : id % 5 === 2 ? `Anime \t ${id}\n(TV)` : `Anime ${id}`,
    english_name: titleless ? 'N/A' : [`English ${id}`, 'Unknown', ' unknown ', '', null][id % 5],
    genres: genres(id),
    synopsis:
      id % 4 === 0 ? SYNOPSIS_PLACEHOLDER : id % 7 === 0 ? '-' : `Story of anime ${id}.\r\n\r\nIt  has   odd spacing.`,
    studios:
      id % 5 === 0
        ? 'None'
        : [choose('studio', id, STUDIOS), id % 3 === 0 ? choose('studio2', id, STUDIOS) : 'Unknown'].join(', '),
    premiered:
      id % 6 === 0
        ? 'Unknown'
        : id % 11 === 0
          ? null
          : `${choose('season', id, SEASONS)} ${1995 + pick('year', id, 12)}`,
    type: id % 9 === 0 ? 'Unknown' : choose('type', id, TYPES),
    source: id % 8 === 0 ? '-' : choose('source', id, SOURCES),
    imported_at: '2024-01-01T00:00:00Z',
    ...(withYear ? { year: id % 10 === 0 ? null : 1990 + pick('year-col', id, 20) } : {}),
  };
}

const sidOf = (id: number) =>
  Array.from({ length: 8 }, (_, level) => `<L${level + 1}_${pick(`sid${level}`, id, 2048)}>`).join('');

export function buildFixture(
  dir: string,
  { users = 60, maxRows = 24, withYear = false, sameWatches = false }: FixtureOptions = {},
): Fixture {
  const database = path.join(dir, 'anime.sqlite');
  const semanticIds = path.join(dir, 'semantic_ids.jsonl');
  const db = new Database(database);
  const columns = [
    'anime_id INTEGER PRIMARY KEY',
    'name TEXT',
    'english_name TEXT',
    'genres TEXT',
    'synopsis TEXT',
    'studios TEXT',
  ];
  columns.push(
    'premiered TEXT',
    'type TEXT',
    'source TEXT',
    'imported_at TEXT NOT NULL',
    ...(withYear ? ['year INTEGER'] : []),
  );
  db.exec(`CREATE TABLE anime (${columns.join(', ')})`);
  db.exec(
    'CREATE TABLE users (user_id INTEGER PRIMARY KEY AUTOINCREMENT, ' +
      'username TEXT UNIQUE NOT NULL, discovered_at TEXT NOT NULL)',
  );
  db.exec(
    'CREATE TABLE user_anime (user_id INTEGER NOT NULL, anime_id INTEGER NOT NULL, score INTEGER NOT NULL,\n' +
      '    watching_status INTEGER NOT NULL, watched_episodes INTEGER NOT NULL, scraped_at TEXT NOT NULL, ' +
      'PRIMARY KEY (user_id, anime_id))',
  );
  const insertAnime = db.prepare(`INSERT INTO anime VALUES (${columns.map(() => '?').join(', ')})`);
  const insertUser = db.prepare('INSERT INTO users VALUES (?, ?, ?)');
  const insertWatch = db.prepare('INSERT INTO user_anime VALUES (?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let id = 1; id <= ANIME_ROWS; id++) insertAnime.run(...Object.values(animeRow(id, withYear)));
    for (let u = 0; u < users; u++) {
      const userId = 3 * u + 1;
      insertUser.run(userId, `user${userId}`, '2024-01-01');
      const like = sameWatches ? 0 : u;
      const count = pick('rows', like, maxRows + 1);
      const animeIds = [
        ...new Set(Array.from({ length: count }, (_, k) => 1 + pick('anime', like * 100 + k, 42))),
      ].sort((a, b) => a - b);
      for (const animeId of animeIds) {
        const k = like * 100 + animeId;
        const day = 1 + pick('day', k, 5);
        insertWatch.run(
          userId,
          animeId,
          pick('score', k, 11),
          choose('status', k, STATUSES),
          pick('episodes', k, 26),
          `2024-02-0${day}T00:00:00`,
        );
      }
    }
  })();
  db.close();
  const lines = SID_IDS.map((id) =>
    JSON.stringify({
      anime_id: id,
      name: `Anime ${id}`,
      english_name: null,
      semantic_id: sidOf(id),
      genres: id % 10 === 7 ? 'Slice of Life, Music' : null,
    }),
  );
  writeFileSync(semanticIds, lines.join('\n') + '\n');
  return { database, semanticIds };
}

/**
 * Rebuilds a fixture's user_anime with the same rows and primary key but no NOT NULL, so a test can
 * store what real files may hold: NULLs, text in a number column, fractions. INTEGER affinity still
 * stores a bound whole number (or its text) as an integer.
 */
export function relaxUserAnime(database: string): void {
  const db = new Database(database);
  db.exec(`ALTER TABLE user_anime RENAME TO strict_user_anime;
    CREATE TABLE user_anime (user_id INTEGER, anime_id INTEGER, score INTEGER, watching_status INTEGER,
      watched_episodes INTEGER, scraped_at TEXT, PRIMARY KEY (user_id, anime_id));
    INSERT INTO user_anime SELECT * FROM strict_user_anime;
    DROP TABLE strict_user_anime;`);
  db.close();
}

/** Runs `fn` on a fresh test fixture of `users` users, removed afterwards. */
export async function withFixture(
  name: string,
  users: number,
  fn: (fixture: Fixture) => Promise<void> | void,
): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), `animind-${name}-`));
  try {
    await fn(buildFixture(dir, { users }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
