import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import type { z } from 'zod';
import type { NodeDefinition } from '../../engine/node.ts';
import { createReporter, type Reporter } from '../../engine/progress.ts';
import { runPlan } from '../../engine/runtime.ts';
import { runCli } from '../helpers/cli.ts';
import { loadTestPlan as loadPlan } from '../helpers/plan.ts';
import { extensionMissing } from '../../transforms/prep/user-histories/history-query.ts';
import historyNode from '../../transforms/prep/history.ts';
import userHistories, { scanWorkers } from '../../transforms/prep/user-histories/user-histories.ts';
import { withFixture } from './fixture-db.ts';
import { PREP_YAML, tempDir } from './run-prep.ts';

/** What prep-user-histories checks before it reads a row: the table, its index, its options, its extension. */

test('prep-user-histories checks the user_anime schema before the run', async () => {
  await withFixture('user-pass-schema', 3, async (fixture) => {
    const db = new Database(fixture.database);
    db.exec('ALTER TABLE user_anime DROP COLUMN scraped_at');
    db.close();
    const problems = await userHistories.check!(userHistories.options.parse({ database: fixture.database }));
    assert.deepEqual(problems, [
      {
        option: 'table',
        message: `database ${fixture.database}, table 'user_anime': missing required column 'scraped_at'`,
      },
    ]);
  });
});

test('prep-user-histories needs an index led by user_id on user_anime, and says how to add one', async () => {
  await withFixture('user-pass-index', 3, async (fixture) => {
    const check = () => userHistories.check!(userHistories.options.parse({ database: fixture.database }));
    const edit = (sql: string) => {
      const db = new Database(fixture.database);
      db.exec(sql);
      db.close();
    };
    assert.deepEqual(await check(), [], 'the primary key (user_id, anime_id)');
    // As a dataframe library writes a table: the same columns and rows, no key.
    edit(`CREATE TABLE keyless AS SELECT * FROM user_anime; DROP TABLE user_anime;
      ALTER TABLE keyless RENAME TO user_anime; CREATE INDEX by_anime ON user_anime(anime_id);
      CREATE INDEX by_user_if_scored ON user_anime(user_id) WHERE score > 0`);
    const fix = 'CREATE INDEX user_anime_by_user ON user_anime(user_id, anime_id)';
    assert.deepEqual(
      await check(),
      [
        {
          option: 'database',
          message:
            `database ${fixture.database}, table 'user_anime': no index led by user_id ` +
            '(expected the primary key (user_id, anime_id)), ' +
            `so every user-id range would read the whole table; add one: ${fix}`,
        },
      ],
      'an index led by another column, or a partial one, cannot serve a range of users',
    );
    edit(fix);
    assert.deepEqual(await check(), [], 'the index the message suggests');
  });
});

test("prep-user-histories takes a number of scan workers or 'auto', and says so for anything else", () => {
  const parse = (workers: unknown) => userHistories.options.safeParse({ database: 'anime.sqlite', workers });
  assert.equal(parse(undefined).data?.workers, 'auto');
  assert.equal(parse(4).data?.workers, 4);
  assert.deepEqual(
    parse('many').error?.issues.map((i) => i.message),
    ["expected a whole number of threads, or 'auto'"],
  );
  assert.equal(parse('4').success, false, 'a parameter arrives typed: --set scan_workers=4 is parsed by prep.yaml');
  assert.equal(parse(-1).success, false);
});

test('task_b_min_history above task_b_max_history is an option error, in both user passes', async () => {
  const message = 'task_b_min_history (40) must not be above task_b_max_history (30), the most rows a history keeps';
  const issues = (def: NodeDefinition, options: Record<string, unknown>) =>
    def.options
      .safeParse(options)
      .error?.issues.map((issue: z.core.$ZodIssue) => [issue.path.join('.'), issue.message]);
  for (const [def, options] of [
    [userHistories, { database: 'anime.sqlite' }],
    [historyNode, {}],
  ] as const) {
    assert.deepEqual(issues(def, { ...options, task_b_min_history: 40, task_b_max_history: 30 }), [
      ['task_b_min_history', message],
    ]);
    assert.equal(issues(def, { ...options, task_b_min_history: 30, task_b_max_history: 30 }), undefined);
  }
  // On the command line: one line pointing at the option in prep.yaml, exit 2, before any data is read.
  const { code, stderr } = await runCli(['pipeline', 'run', PREP_YAML, '--quiet', '--set', 'task_b_min_history=40']);
  const lines = stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /^error: .*prep\.yaml:\d+: .*option 'task_b_min_history'/);
  assert.ok(lines[0]!.endsWith(message), lines[0]);
  assert.equal(code, 2);
});

test("scan workers beyond the machine's cores are cut to them, with a warning", async () => {
  const cores = os.availableParallelism();
  const warned: string[] = [];
  const workers = (asked: number | 'auto') => scanWorkers(asked, cores, (message) => warned.push(message));
  assert.deepEqual([workers(0), workers(cores), workers('auto')], [0, cores, Math.min(2, cores)]);
  assert.deepEqual(warned, [], 'no warning up to the cores');
  const warning =
    `workers ${cores + 3} is more than this machine's ${cores} cores: scanning with ${cores} ` +
    '(more threads than cores only slow the scan; the output is the same)';
  assert.equal(workers(cores + 3), cores);
  assert.deepEqual(warned, [warning]);
  // In a run, the warning is the history node's, once.
  await withFixture('user-pass-cores', 3, async (fixture) => {
    const quiet = createReporter({ mode: 'quiet', format: 'text' });
    const warnings: string[] = [];
    const reporter: Reporter = {
      ...quiet,
      forNode: (node) => ({ ...quiet.forNode(node), warn: (message) => warnings.push(`[${node}] ${message}`) }),
    };
    const outDir = tempDir('user-pass-cores-out');
    const plan = await loadPlan(PREP_YAML, {
      database: fixture.database,
      semantic_ids: fixture.semanticIds,
      out_dir: outDir,
      target_examples: '100',
      scan_workers: String(cores + 3),
    });
    await runPlan(plan, { reporter });
    rmSync(outDir, { recursive: true, force: true });
    assert.deepEqual(warnings, [`[history] ${warning}`]);
  });
});

test('prep-user-histories needs its SQLite extension built, and says how to build it', () => {
  assert.equal(extensionMissing(), undefined, 'npm install builds it');
  const dir = tempDir('no-extension');
  const missing = path.join(dir, 'user_history.node');
  assert.equal(
    extensionMissing(missing),
    `the user-history SQLite extension ${missing} is not built: run 'node scripts/setup.mjs' (or 'npm install')`,
  );
  rmSync(dir, { recursive: true });
});
