import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { VOCAB_FILE } from '../../sources/prep/semantic-ids-source.ts';
import { buildFixture, type Fixture } from './fixture-db.ts';
import { ROOT, tempDir } from './run-prep.ts';

/** Runs the real CLI on prep.yaml, as a user would. */
function runCli(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['bin/animind.mjs', 'pipeline', 'run', 'pipelines/prep.yaml', '--quiet', ...args],
      { cwd: ROOT },
    );
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.on('close', (code) => resolve({ code, stderr, stdout }));
  });
}

interface Case {
  name: string;
  /** Breaks a fresh fixture; returns extra --set pairs. */
  arrange(fixture: Fixture, dir: string): Record<string, string>;
  code: number;
  /** Everything the one error line must contain. */
  says: (fixture: Fixture) => (string | RegExp)[];
}

const editDb = (fixture: Fixture, sql: string) => {
  const db = new Database(fixture.database);
  db.exec(sql);
  db.close();
};
/** A well-formed ID, `<L1_id><L2_id>…<L8_id>`, unique to the anime. */
const sidOf = (id: number, levels = 8) => Array.from({ length: levels }, (_, k) => `<L${k + 1}_${id}>`).join('');
const sidLine = (id: number, sid = sidOf(id)) => JSON.stringify({ anime_id: id, semantic_id: sid });
/** Puts the bundled vocabulary beside the fixture's semantic_ids.jsonl, where prep looks for it. */
const bundledVocabBeside = (f: Fixture) =>
  copyFileSync(path.join(ROOT, 'fixtures/semantic_vocab.json'), path.join(path.dirname(f.semanticIds), VOCAB_FILE));

const CASES: Case[] = [
  {
    name: 'missing database file',
    arrange: (_f, dir) => ({ database: path.join(dir, 'nope.sqlite') }),
    code: 2,
    says: () => [/prep\.yaml:\d+/, "option 'database'", 'nope.sqlite does not exist'],
  },
  {
    name: 'missing semantic-ID file',
    arrange: (_f, dir) => ({ semantic_ids: path.join(dir, 'nope.jsonl') }),
    code: 2,
    says: () => [/prep\.yaml:\d+/, "option 'path'", 'nope.jsonl does not exist'],
  },
  {
    name: 'a missing table',
    arrange: (f) => (editDb(f, 'DROP TABLE user_anime'), {}),
    code: 2,
    says: (f) => [f.database, "no table 'user_anime'"],
  },
  {
    name: 'a user_anime without an index led by user_id',
    arrange: (f) => (
      editDb(
        f,
        'CREATE TABLE keyless AS SELECT * FROM user_anime; DROP TABLE user_anime; ' +
          'ALTER TABLE keyless RENAME TO user_anime',
      ),
      {}
    ),
    code: 2,
    says: (f) => [/prep\.yaml:\d+/, f.database, "table 'user_anime'", 'no index led by user_id', 'CREATE INDEX'],
  },
  {
    name: 'a missing required column',
    arrange: (f) => (editDb(f, 'ALTER TABLE anime DROP COLUMN studios'), {}),
    code: 2,
    says: (f) => [f.database, "table 'anime'", "missing required column 'studios'"],
  },
  {
    name: 'invalid JSON at a given line',
    arrange: (f) => (writeFileSync(f.semanticIds, [sidLine(1), sidLine(2), '{"anime_id": 3,'].join('\n')), {}),
    code: 1,
    says: (f) => [`${f.semanticIds}:3`, 'invalid JSON'],
  },
  {
    name: 'an empty semantic_id',
    arrange: (f) => (writeFileSync(f.semanticIds, [sidLine(1), sidLine(2, '  ')].join('\n')), {}),
    code: 1,
    says: (f) => [`${f.semanticIds}:2`, 'semantic_id', 'non-empty'],
  },
  {
    name: 'a missing semantic_id',
    arrange: (f) => (writeFileSync(f.semanticIds, [sidLine(1), '', JSON.stringify({ anime_id: 2 })].join('\n')), {}),
    code: 1,
    says: (f) => [`${f.semanticIds}:3`, 'semantic_id'],
  },
  {
    name: 'a duplicate anime_id',
    arrange: (f) => (writeFileSync(f.semanticIds, [sidLine(1), sidLine(5), sidLine(5, sidOf(9))].join('\n')), {}),
    code: 1,
    says: (f) => [`${f.semanticIds}:3`, 'duplicate anime_id 5', 'line 2'],
  },
  {
    name: 'a semantic ID of 5 tokens instead of 8',
    arrange: (f) => (writeFileSync(f.semanticIds, [sidLine(1), sidLine(2, sidOf(2, 5))].join('\n')), {}),
    code: 1,
    says: (f) => [`${f.semanticIds}:2`, 'semantic_id of anime_id 2', 'expected 8 level tokens', 'got 5'],
  },
  {
    name: 'a token outside the vocabulary beside the file',
    arrange: (f) => {
      bundledVocabBeside(f);
      writeFileSync(f.semanticIds, [sidLine(1), sidLine(2, sidOf(2).replace('<L1_2>', '<L1_99999>'))].join('\n'));
      return {};
    },
    code: 1,
    says: (f) => [
      `${f.semanticIds}:2`,
      'token <L1_99999> is not in the vocabulary',
      path.join(path.dirname(f.semanticIds), VOCAB_FILE),
    ],
  },
  {
    name: 'two anime sharing one semantic ID: both lines named',
    arrange: (f) => (writeFileSync(f.semanticIds, [sidLine(1), sidLine(5), sidLine(7, sidOf(5))].join('\n')), {}),
    code: 1,
    says: (f) => [`${f.semanticIds}:3`, `duplicate semantic_id ${sidOf(5)}`, 'anime_id 7', 'anime_id 5 at line 2'],
  },
  {
    name: 'an anime_id written as a string',
    arrange: (f) => (
      writeFileSync(f.semanticIds, [sidLine(1), JSON.stringify({ anime_id: '12', semantic_id: sidOf(12) })].join('\n')),
      {}
    ),
    code: 1,
    says: (f) => [`${f.semanticIds}:2`, 'anime_id: expected an integer, got "12"'],
  },
  {
    name: 'splits that do not sum to 1',
    arrange: () => ({ split_a: '0.6' }),
    code: 2,
    says: () => [/prep\.yaml:\d+/, "option 'split_a'", 'must sum to 1'],
  },
  {
    name: 'an empty pool with a positive quota',
    arrange: (f) => (editDb(f, 'DELETE FROM user_anime'), {}),
    code: 1,
    says: () => ["node 'sample'", 'Task B pool is empty but its quota is 5'],
  },
  {
    name: 'an unknown mask mode',
    arrange: () => ({ task_b_mask_modes: 'last,middle' }),
    code: 2,
    says: () => [/prep\.yaml:\d+/, 'task_b_mask_modes', '"last"|"random"'],
  },
  {
    name: 'an out_dir that cannot be written',
    arrange: (_f, dir) => {
      writeFileSync(path.join(dir, 'a-file'), '');
      return { out_dir: path.join(dir, 'a-file', 'out') };
    },
    code: 2,
    says: (_f) => [/prep\.yaml:\d+/, 'cannot write', 'is not a folder'],
  },
];

describe('bad input: one error line, the right exit code, no partial output', { concurrency: 4 }, () => {
  for (const c of CASES) {
    it(c.name, async (t) => {
      const dir = tempDir('bad-input');
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const fixture = buildFixture(dir, { users: 12 });
      const outDir = path.join(dir, 'out');
      const sets = {
        database: fixture.database,
        semantic_ids: fixture.semanticIds,
        out_dir: outDir,
        target_examples: '20',
        ...c.arrange(fixture, dir),
      };
      const { code, stderr, stdout } = await runCli(Object.entries(sets).flatMap(([k, v]) => ['--set', `${k}=${v}`]));
      const lines = stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
      assert.match(lines[0]!, /^error: /);
      for (const expected of c.says(fixture)) {
        if (typeof expected === 'string')
          assert.ok(lines[0]!.includes(expected), `${lines[0]} should mention ${expected}`);
        else assert.match(lines[0]!, expected);
      }
      assert.equal(code, c.code, lines[0]);
      assert.equal(stdout, '');
      const written = existsSync(sets.out_dir) ? readdirSync(sets.out_dir) : [];
      assert.deepEqual(written, [], 'no partial output');
    });
  }
});
