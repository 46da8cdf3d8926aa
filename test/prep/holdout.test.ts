/**
 * Held-out users: prep keeps a share of users out of training (holdout_valid, holdout_test) and
 * writes one evaluation example for each, llm_prep_valid.jsonl and llm_prep_test.jsonl; the
 * leakage audit fails the run if a training row still carries one of them.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseDocument, type YAMLMap } from 'yaml';
import { DataError } from '../../engine/errors.ts';
import heldOutNode from '../../transforms/prep/held-out.ts';
import { HoldoutSplitter } from '../../transforms/prep/holdout.ts';
import auditNode from '../../transforms/prep/leakage-audit.ts';
import { taskBRow } from '../../transforms/prep/task-b.ts';
import { madeRow, type HeldOutExample, type UserHistory } from '../../transforms/prep/types.ts';
import type { PrepRow } from '../../transforms/prep/prep-row.ts';
import { runCli } from '../helpers/cli.ts';
import { buildFixture, type Fixture } from './fixture-db.ts';
import { catalogOf, entry, runNode, watch } from './harness.ts';
import { leakedRow, LEAKED_ID } from './leak-row.ts';
import { PREP_YAML, readOutput, readRows, runPrep, tempDir } from './run-prep.ts';

process.env.ANIMIND_FIXED_TIME = '2026-01-01T00:00:00Z';

const catalog = catalogOf(...[1, 2, 3, 4, 5, 6, 7, 8].map((id) => entry(id)));
const allValid = { holdout_valid: 1, holdout_test: 0 };

const jsonLines = <T>(text: string): T[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);

const userIdsOf = (database: string): number[] => {
  const db = new Database(database, { readonly: true });
  try {
    return db.prepare('SELECT DISTINCT user_id FROM user_anime ORDER BY user_id').pluck().all() as number[];
  } finally {
    db.close();
  }
};

describe('the split', () => {
  test("a user's split is a keyed hash of (seed, user_id): same seed, same split; another seed, another", () => {
    const ids = Array.from({ length: 20000 }, (_, i) => i + 1);
    const splitOf = (seed: number) => {
      const splitter = new HoldoutSplitter(seed, { holdout_valid: 0.1, holdout_test: 0.2 });
      return ids.map((id) => splitter.splitOf(id));
    };
    const split = splitOf(42);
    assert.deepEqual(splitOf(42), split);
    assert.notDeepEqual(splitOf(7), split);
    // u < 0.1 is valid, 0.1 <= u < 0.3 test: about 2,000 and 4,000 of 20,000 users.
    const valid = split.filter((s) => s === 'valid').length;
    const test = split.filter((s) => s === 'test').length;
    assert.ok(valid > 1800 && valid < 2200, `valid ${valid}`);
    assert.ok(test > 3700 && test < 4300, `test ${test}`);
  });

  test('shares of 0 hold no user out', () => {
    const splitter = new HoldoutSplitter(42, { holdout_valid: 0, holdout_test: 0 });
    assert.equal(splitter.active, false);
    assert.ok([1, 2, 3, 1000].every((id) => splitter.splitOf(id) === null));
  });

  test('holdout_valid + holdout_test above 1 is an option error', () => {
    const parsed = heldOutNode.options.safeParse({ split: 'valid', holdout_valid: 0.6, holdout_test: 0.5 });
    assert.equal(parsed.success, false);
    assert.match(parsed.error!.issues[0]!.message, /must be at most 1, got 0.6 \+ 0.5/);
  });
});

describe('held-out examples', () => {
  test(
    "a held-out user's example: the kept history's last watch is the target, and the prompt is " +
      'the Task B last-mask input of the history (the watches before it, each with its sentiment)',
    async () => {
      const rows = [
        watch(9, 3, { score: 9 }),
        watch(9, 1),
        watch(9, 2, { watching_status: 4 }),
        watch(9, 5, { score: 8 }),
      ];
      const { rows: examples } = await runNode<HeldOutExample>(
        heldOutNode,
        { split: 'valid', ...allValid },
        { in: [[{ user_id: 9, eligible: true, rows }]], catalog: [[...catalog.values()]] },
      );
      assert.deepEqual(examples, [
        {
          user_id: 9,
          history: [3, 1, 2],
          target_anime_id: 5,
          target_sid: '<S5>',
          target_sentiment: '<liked>',
          history_len: 3,
          prompt:
            'A user watched <anime_start><S3><anime_end> <liked> ' +
            'then watched <anime_start><S1><anime_end> <watch> ' +
            'then watched <anime_start><S2><anime_end> <dropped> ' +
            'then watched <anime_start>[MASK]<anime_end>',
        },
      ]);
      // The very text Task B's `last` row of this history has.
      const taskB = madeRow(taskBRow({ user_id: 9, rows, mask_mode: 'last', mask_index: 3 }, catalog, 7).row);
      assert.equal(examples[0]!.prompt, taskB.input);
      assert.equal(examples[0]!.target_sid, taskB.output);
    },
  );

  test('a held-out user too short for Task B gives no example, and is counted', async () => {
    const histories: UserHistory[] = [
      { user_id: 1, eligible: false, rows: [watch(1, 1), watch(1, 2)] },
      { user_id: 2, eligible: true, rows: [watch(2, 1), watch(2, 2), watch(2, 3), watch(2, 4)] },
    ];
    const { rows, stats } = await runNode<HeldOutExample>(
      heldOutNode,
      { split: 'valid', ...allValid },
      { in: [histories], catalog: [[...catalog.values()]] },
    );
    assert.deepEqual(
      rows.map((e) => e.user_id),
      [2],
    );
    assert.deepEqual(stats, { holdout_valid: 1, holdout_test: 0, users: 2, examples: 1, short_users: 1 });
  });

  test("each split's node takes its own users only: valid and test share none, together hold all", async () => {
    const histories: UserHistory[] = Array.from({ length: 40 }, (_, i) => ({
      user_id: i + 1,
      eligible: true,
      rows: [1, 2, 3, 4].map((a) => watch(i + 1, a)),
    }));
    const usersOf = async (split: string) =>
      (
        await runNode<HeldOutExample>(
          heldOutNode,
          { split, holdout_valid: 0.5, holdout_test: 0.5 },
          { in: [histories], catalog: [[...catalog.values()]] },
        )
      ).rows.map((e) => e.user_id);
    const valid = await usersOf('valid');
    const test = await usersOf('test');
    assert.ok(valid.length > 0 && test.length > 0);
    assert.deepEqual(
      [...valid, ...test].sort((a, b) => a - b),
      histories.map((h) => h.user_id),
    );
  });
});

describe('prep.yaml with held-out users', () => {
  // Larger shares than the defaults, so the 60 users of the fixture hold out a dozen or more.
  const shares = { holdout_valid: 0.15, holdout_test: 0.15 };
  const params = { target_examples: 600, ...shares };
  let dir: string;
  let fixture: Fixture;
  let outDir: string;
  let heldOut: Map<number, string>;
  before(async () => {
    dir = tempDir('holdout');
    fixture = buildFixture(dir);
    outDir = await runPrep(fixture, params);
    const splitter = new HoldoutSplitter(42, shares);
    heldOut = new Map(
      userIdsOf(fixture.database).flatMap((id) => {
        const split = splitter.splitOf(id);
        return split ? [[id, split] as const] : [];
      }),
    );
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  });

  test('no held-out user reaches the training file, in Task B or C; Task A (no user) stays', () => {
    assert.ok(heldOut.size >= 10, `${heldOut.size} held-out users`);
    const rows = readRows(outDir);
    assert.deepEqual(
      rows.filter((row) => heldOut.has(row.user_id as number)).map((row) => row.example_id),
      [],
    );
    const tasks = new Set(rows.map((row) => row.task));
    assert.deepEqual([...tasks].sort(), ['A', 'B', 'C']);
  });

  test("the training histories (the baselines' data): every training user's kept history, none held out", () => {
    const histories = jsonLines<{ user_id: number; anime_ids: number[] }>(
      readOutput(outDir, 'llm_prep_train_histories.jsonl'),
    );
    const users = histories.map((h) => h.user_id);
    assert.ok(users.length > 20, `${users.length} training users`);
    assert.deepEqual(
      users.filter((id) => heldOut.has(id)),
      [],
    );
    assert.deepEqual(
      users,
      [...users].sort((a, b) => a - b),
      'in user_id order',
    );
    // The same kept history a held-out user's example is built from: Task B's order and filters.
    const taskB = readRows(outDir).filter(
      (row) => row.task === 'B' && (row.meta as { mask_mode?: string }).mask_mode === 'last',
    );
    assert.ok(taskB.length > 0);
    for (const row of taskB) {
      const history = histories.find((h) => h.user_id === row.user_id);
      assert.deepEqual(history?.anime_ids, row.anime_ids, `user ${String(row.user_id)}`);
    }
  });

  test("each held-out user with a Task B history has one example in its split's file, in user_id order", () => {
    for (const split of ['valid', 'test']) {
      const examples = jsonLines<HeldOutExample>(readOutput(outDir, `llm_prep_${split}.jsonl`));
      const users = examples.map((e) => e.user_id);
      assert.ok(users.length > 0, `${split}: no example`);
      assert.deepEqual(
        users,
        [...users].sort((a, b) => a - b),
        `${split}: in user_id order`,
      );
      assert.ok(users.every((id) => heldOut.get(id) === split));
      for (const e of examples) {
        assert.deepEqual(Object.keys(e), [
          'user_id',
          'history',
          'target_anime_id',
          'target_sid',
          'target_sentiment',
          'history_len',
          'prompt',
        ]);
        assert.equal(e.history_len, e.history.length);
        assert.match(e.target_sid, /^(<L\d_\d+>){8}$/);
        assert.ok(e.prompt.endsWith('then watched <anime_start>[MASK]<anime_end>'));
      }
    }
  });

  test("an example's prompt and target are the Task B last-mask row its user has when not held out", async (t) => {
    // Everyone trained on, one `last` row each, and B's quota above its pool: every user's row is written.
    const plain = await runPrep(fixture, {
      target_examples: 600,
      task_b_mask_modes: 'last',
      holdout_valid: 0,
      holdout_test: 0,
    });
    t.after(() => rmSync(plain, { recursive: true, force: true }));
    const lastRows = new Map(
      readRows(plain)
        .filter((row) => row.task === 'B')
        .map((row) => [row.user_id as number, row]),
    );
    for (const split of ['valid', 'test'])
      for (const e of jsonLines<HeldOutExample>(readOutput(outDir, `llm_prep_${split}.jsonl`))) {
        const row = lastRows.get(e.user_id)!;
        assert.deepEqual(
          { prompt: e.prompt, target: e.target_sid, ids: [...e.history, e.target_anime_id] },
          { prompt: row.input, target: row.output, ids: row.anime_ids },
        );
      }
  });

  test('the summary counts the held-out users, the rows dropped before sampling, and a clean leakage audit', () => {
    const summary = JSON.parse(readOutput(outDir, 'llm_prep_summary.json')) as Record<string, Record<string, unknown>>;
    const examples = (split: string) => jsonLines(readOutput(outDir, `llm_prep_${split}.jsonl`)).length;
    const { holdout, leakage_audit: audit } = summary;
    assert.deepEqual(holdout!.fractions, { valid: 0.15, test: 0.15 });
    assert.deepEqual(holdout!.examples, { valid: examples('valid'), test: examples('test') });
    const users = holdout!.users as { valid: number; test: number };
    const dropped = holdout!.dropped_rows as { B: number; C: number };
    assert.ok(dropped.B > 0 && dropped.C > 0, JSON.stringify(dropped));
    assert.deepEqual(audit, {
      held_out_users: users.valid + users.test,
      training_rows: 600,
      rows_with_held_out_user: 0,
      rows_with_held_out_pair: 0,
      total: 0,
    });
  });

  test('the manifest lists the held-out files with their rows', () => {
    const manifest = JSON.parse(readOutput(outDir, 'llm_prep_manifest.json')) as {
      outputs: { path: string; rows: number | null }[];
    };
    const rowsOf = (name: string) => manifest.outputs.find((o) => o.path === name)?.rows;
    assert.equal(rowsOf('llm_prep_valid.jsonl'), jsonLines(readOutput(outDir, 'llm_prep_valid.jsonl')).length);
    assert.equal(rowsOf('llm_prep_test.jsonl'), jsonLines(readOutput(outDir, 'llm_prep_test.jsonl')).length);
  });

  test('batch size and scan workers change no byte of the three files', async (t) => {
    const names = ['llm_prep_train.jsonl', 'llm_prep_valid.jsonl', 'llm_prep_test.jsonl'];
    for (const [batch_size, scan_workers] of [
      [1, 0],
      [4096, 2],
    ] as const) {
      const other = await runPrep(fixture, { ...params, batch_size, scan_workers });
      t.after(() => rmSync(other, { recursive: true, force: true }));
      for (const name of names)
        assert.equal(
          readOutput(other, name),
          readOutput(outDir, name),
          `${name}, batch ${batch_size}, workers ${scan_workers}`,
        );
    }
  });

  test('shares of 0 hold no user out: empty held-out files, no holdout or leakage_audit in the summary', async (t) => {
    const none = await runPrep(fixture, { target_examples: 600, holdout_valid: 0, holdout_test: 0 });
    t.after(() => rmSync(none, { recursive: true, force: true }));
    assert.equal(readOutput(none, 'llm_prep_valid.jsonl'), '');
    assert.equal(readOutput(none, 'llm_prep_test.jsonl'), '');
    const summary = JSON.parse(readOutput(none, 'llm_prep_summary.json')) as Record<string, unknown>;
    assert.equal('holdout' in summary, false);
    assert.equal('leakage_audit' in summary, false);
  });
});

test(
  "users who all watched the same: each training user's Task B row that repeats the held-out " +
    '(history, target) is set aside before sampling, so the run succeeds without it',
  async (t) => {
    const dir = tempDir('holdout-same');
    const fixture = buildFixture(dir, { sameWatches: true });
    const outDir = await runPrep(fixture, { target_examples: 600, holdout_valid: 0.15, holdout_test: 0.15 });
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
      rmSync(outDir, { recursive: true, force: true });
    });
    const examples = jsonLines<HeldOutExample>(readOutput(outDir, 'llm_prep_valid.jsonl'));
    assert.ok(examples.length > 0);
    // Every `last` row is (history, target) of the held-out examples; a `random` row hides another watch.
    const taskB = readRows(outDir).filter((row) => row.task === 'B');
    assert.deepEqual(new Set(taskB.map((row) => (row.meta as { mask_mode: string }).mask_mode)), new Set(['random']));
    const summary = JSON.parse(readOutput(outDir, 'llm_prep_summary.json')) as Record<string, Record<string, number>>;
    const users = summary.holdout!.users as unknown as { valid: number; test: number };
    const trainingUsers = summary.users!.task_b_users! - users.valid - users.test;
    assert.equal(summary.holdout!.repeated_pairs_set_aside, trainingUsers);
    assert.equal(summary.leakage_audit!.total, 0);
  },
);

describe('the leakage audit', () => {
  // With these shares and seed 42, some of users 1-20 are held out for validation, the others trained on.
  const shares = { holdout_valid: 0.3, holdout_test: 0 };
  const splitter = new HoldoutSplitter(42, shares);
  const ids = Array.from({ length: 20 }, (_, i) => i + 1);
  const held = ids.find((id) => splitter.splitOf(id) === 'valid')!;
  const [u1, u2] = ids.filter((id) => splitter.splitOf(id) === null) as [number, number];
  const example: HeldOutExample = {
    user_id: held,
    history: [3, 1, 2],
    target_anime_id: 5,
    target_sid: '<S5>',
    target_sentiment: '<liked>',
    history_len: 3,
    prompt: 'A user watched …',
  };

  const taskA = (n: number): PrepRow => ({
    example_id: `prep_00000000${n}`,
    task: 'A',
    input: 'The anime <S1> has the title',
    output: 'Title',
    anime_ids: [1],
    user_id: null,
    meta: { template_id: 'sid_to_title' },
  });
  const taskB = (n: number, user: number, anime_ids: number[], mask_index: number): PrepRow => ({
    example_id: `prep_00000000${n}`,
    task: 'B',
    input: '…',
    output: `<S${anime_ids[mask_index]}>`,
    anime_ids,
    user_id: user,
    meta: { template_id: 'watch_sequence_mask', mask_mode: 'random', mask_index, history_len: anime_ids.length },
  });
  const taskC = (n: number, user: number): PrepRow => ({
    example_id: `prep_00000000${n}`,
    task: 'C',
    input: '<S1> is interesting to fans of',
    output: 'action',
    anime_ids: [1],
    user_id: user,
    meta: { template_id: 'reasoning_single', kind: 'single' },
  });

  const audit = (rows: PrepRow[]) =>
    runNode<PrepRow>(auditNode, shares, { in: [rows], valid: [[example]], test: [[]] });
  const failsWith = (message: string) => (error: Error) => error instanceof DataError && error.message === message;
  const LEAKED = 'leakage audit: 1 training row carries a held-out user or a held-out (history, target) pair; ';

  const clean = () => [
    taskA(1),
    taskB(2, u1, [3, 1, 2, 5], 2), // the held-out anime, but another pair: (3, 1, 5) -> 2
    taskB(3, u2, [3, 1, 5, 2], 3), // the same anime in another order: (3, 1, 5) -> 2
    taskC(4, u2),
  ];

  test('rows of training users whose pairs are not held out pass unchanged, and are counted', async () => {
    const rows = clean();
    const { rows: out, stats } = await audit(rows);
    assert.deepEqual(out, rows);
    assert.deepEqual(stats, { rows: 4, rows_with_held_out_user: 0, rows_with_held_out_pair: 0, total: 0 });
  });

  test("a row of a held-out user (here Task C) fails the run in one line: the count, the first row's id", async () => {
    await assert.rejects(
      audit([...clean(), taskC(5, held)]),
      failsWith(`${LEAKED}the first is prep_000000005 (user ${held}, held out for valid)`),
    );
  });

  test(
    "a Task B row of a training user whose unmasked watches and masked anime are a held-out example's " +
      '(history, target) leaks the example, whatever its mask position',
    async () => {
      const pair = `${LEAKED}the first is prep_000000006 (the (history, target) of held-out user ${held}'s example)`;
      // The held-out `last` row itself, then the target hidden among the same watches in their order.
      await assert.rejects(audit([...clean(), taskB(6, u1, [3, 1, 2, 5], 3)]), failsWith(pair));
      await assert.rejects(audit([...clean(), taskB(6, u1, [3, 5, 1, 2], 1)]), failsWith(pair));
    },
  );

  test('the audit counts every leaked row, each once, and names the first', async () => {
    const leaked = [taskC(5, held), taskB(6, u1, [3, 1, 2, 5], 3), leakedRow(example)];
    await assert.rejects(audit([...clean(), ...leaked]), (error: Error) =>
      error.message.startsWith(
        'leakage audit: 3 training rows carry a held-out user or a held-out (history, target) pair; ' +
          'the first is prep_000000005 ',
      ),
    );
  });

  test('a leaked row in prep.yaml fails the run: exit 1, one line naming it, and nothing is published', async (t) => {
    const dir = tempDir('leak');
    const fixture = buildFixture(dir);
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const pipelineShares = { holdout_valid: 0.15, holdout_test: 0.15 };
    // prep.yaml with a node between the shuffle and the audit that adds a held-out example as a
    // training row, under a training user's id, so that only the pair check can see it.
    const doc = parseDocument(readFileSync(PREP_YAML, 'utf8'));
    const nodes = doc.get('nodes') as YAMLMap;
    nodes.set('leak', {
      use: fileURLToPath(new URL('./leak-row.ts', import.meta.url)),
      from: { in: 'examples', valid: 'valid_examples' },
      as_user: trainingUsersOf(fixture, pipelineShares)[0],
    });
    (nodes.get('audit') as YAMLMap).setIn(['from', 'in'], 'leak');
    // Every path prep.yaml's defaults name relative to its folder is set below.
    const pipeline = path.join(dir, 'prep-leak.yaml');
    writeFileSync(pipeline, doc.toString());
    const out = path.join(dir, 'out');
    const params = {
      database: fixture.database,
      semantic_ids: fixture.semanticIds,
      out_dir: out,
      target_examples: 600,
      ...pipelineShares,
    };
    const run = await runCli([
      'pipeline',
      'run',
      pipeline,
      '--quiet',
      ...Object.entries(params).flatMap(([name, value]) => ['--set', `${name}=${value}`]),
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        String.raw`^error: node 'audit': leakage audit: 1 training row carries a held-out user or a held-out ` +
          String.raw`\(history, target\) pair; the first is ${LEAKED_ID} ` +
          String.raw`\(the \(history, target\) of held-out user \d+'s example\)\n$`,
      ),
    );
    assert.deepEqual(existsSync(out) ? readdirSync(out) : [], [], 'no output, temporary file or lock is left');
  });
});

/** The fixture's users that `shares` (with seed 42) keep in training. */
function trainingUsersOf(fixture: Fixture, shares: { holdout_valid: number; holdout_test: number }): number[] {
  const splitter = new HoldoutSplitter(42, shares);
  return userIdsOf(fixture.database).filter((id) => splitter.splitOf(id) === null);
}
