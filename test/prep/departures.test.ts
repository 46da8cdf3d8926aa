import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { buildFixture, type Fixture } from './fixture-db.ts';
import { readOutput, readRows, ROOT, runPrep, tempDir } from './run-prep.ts';

process.env.ANIMIND_FIXED_TIME = '2026-01-01T00:00:00Z';

/** Runs prep on a fresh copy of the test fixture and cleans up both folders afterwards. */
async function prepOn(
  t: { after(fn: () => void): void },
  options: Parameters<typeof buildFixture>[1],
  params: Record<string, string | number>,
) {
  const dir = tempDir('departure');
  const fixture = buildFixture(dir, options);
  const outDir = await runPrep(fixture, params);
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  });
  return { outDir, fixture };
}

const PLACEHOLDER = /^(unknown|n\/a|none|-|)$/i;

/** Every value a template inserted: the output's list items, a quoted title, a studio list. */
function insertedValues(row: Record<string, unknown>): string[] {
  const input = row.input as string;
  const output = row.output as string;
  const values = [output, ...output.split(', '), ...output.split(' and ')];
  for (const match of input.matchAll(/titled '(.*?)'(?: by studio (.*?) has| released| has| belongs)/g)) {
    values.push(match[1]!);
    if (match[2]) values.push(...match[2].split(', '));
  }
  return values;
}

function assertNoPlaceholder(rows: Record<string, unknown>[]) {
  assert.ok(rows.length > 0);
  for (const row of rows) {
    for (const value of insertedValues(row))
      assert.doesNotMatch(value.trim(), PLACEHOLDER, `${row.example_id}: ${JSON.stringify(row)}`);
    for (const field of ['input', 'output'] as const) {
      const text = row[field] as string;
      assert.doesNotMatch(
        text,
        /\bunknown\b|No synopsis information has been added/i,
        `${row.example_id} ${field}: ${text}`,
      );
      assert.equal(text, text.replace(/\s+/g, ' ').trim(), `${row.example_id} ${field} has raw whitespace`);
    }
  }
}

test('departure: the dataset builder schema (no year column) works; the year comes from premiered', async (t) => {
  const rows = readRows((await prepOn(t, { withYear: false }, { target_examples: 2000 })).outDir);
  const years = rows.filter((r) => (r.meta as { template_id: string }).template_id === 'sid_to_year');
  assert.ok(years.length > 0);
  for (const r of years) assert.match(r.output as string, /^(199[5-9]|200[0-6])$/, 'a premiered year of the fixture');
});

test('the year column is used when it exists', async (t) => {
  const rows = readRows((await prepOn(t, { withYear: true }, { target_examples: 2000 })).outDir);
  const years = new Set(
    rows.filter((r) => (r.meta as { template_id: string }).template_id === 'sid_to_year').map((r) => Number(r.output)),
  );
  assert.ok(
    [...years].some((y) => y < 1995),
    'years from the column (1990-2009), not only premiered (1995-2006)',
  );
});

test('departure: no placeholder (Unknown, N/A, None, -, empty, placeholder synopsis) is ever emitted', async (t) => {
  assertNoPlaceholder(readRows((await prepOn(t, {}, { target_examples: 3000 })).outDir));
});

test(
  'departure: the bundled builder-shaped fixture runs through ' +
    'with no placeholder, and two runs give identical bytes',
  async (t) => {
    const fixture: Fixture = {
      database: path.join(ROOT, 'fixtures/anime.sqlite'),
      semanticIds: path.join(ROOT, 'fixtures/semantic_ids.jsonl'),
    };
    const first = await runPrep(fixture, { target_examples: 4000 });
    const second = await runPrep(fixture, { target_examples: 4000, batch_size: 333 });
    t.after(() => [first, second].forEach((dir) => rmSync(dir, { recursive: true, force: true })));
    assertNoPlaceholder(readRows(first));
    for (const name of ['llm_prep_train.jsonl', 'llm_prep_summary.json'])
      assert.ok(
        readFileSync(path.join(first, name)).equals(readFileSync(path.join(second, name))),
        `${name} differs between runs`,
      );
  },
);

test('departure: Task B/C rows are sampled uniformly from all users, not from the lowest user ids', async (t) => {
  // 1500 users with short histories; B quota 100 of a pool of about 2 rows per eligible user.
  const { outDir, fixture } = await prepOn(t, { users: 1500, maxRows: 10 }, { target_examples: 400 });
  const rows = readRows(outDir);
  const maxUser = 3 * 1499 + 1;
  for (const task of ['B', 'C']) {
    const users = rows.filter((r) => r.task === task).map((r) => r.user_id as number);
    assert.equal(users.length, 100);
    const fifths = Array<number>(5).fill(0);
    for (const u of users) fifths[Math.min(4, Math.floor((u / (maxUser + 1)) * 5))]!++;
    for (const n of fifths)
      assert.ok(n >= 8 && n <= 34, `Task ${task} users per fifth of the id range: ${fifths.join(', ')}`);
  }
  const summary = JSON.parse(readOutput(outDir, 'llm_prep_summary.json')) as { users: { users_scanned: number } };
  const db = new Database(fixture.database, { readonly: true });
  const withRows = db.prepare('SELECT count(DISTINCT user_id) FROM user_anime').pluck().get();
  db.close();
  assert.equal(summary.users.users_scanned, withRows, 'every user was read');
});
