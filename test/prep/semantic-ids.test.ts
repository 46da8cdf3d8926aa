/**
 * semantic_ids.jsonl as prep reads it (semantic-ids-source): what an anime's ID must look like,
 * where the vocabulary it is checked against comes from, and the UTF-8 byte-order mark a file may
 * start with. Each case runs the real node in a two-node pipeline (the source, then a JSON-lines
 * sink) and reads its rows or its one-line error. The last part checks the summary keys the
 * original tool's tests read.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AnimindError, ValidationError } from '../../engine/errors.ts';
import { readLineBatches } from '../../engine/line-reader.ts';
import { createReporter } from '../../engine/progress.ts';
import { runPlan } from '../../engine/runtime.ts';
import { planInputFiles } from '../../engine/validate.ts';
import { SID_LEVELS, VOCAB_FILE } from '../../sources/prep/semantic-ids-source.ts';
import { produceGolden } from '../golden/prep-golden.ts';
import { loadTestPlan } from '../helpers/plan.ts';
import { ROOT, tempDir } from './run-prep.ts';

const BUNDLED_IDS = path.join(ROOT, 'fixtures/semantic_ids.jsonl');
const BUNDLED_VOCAB = path.join(ROOT, 'fixtures/semantic_vocab.json');
/** The full artifact the bundled fixture is cut from, where this checkout has it (bench/prep.ts reads it too). */
const REAL_ARTIFACT = path.resolve(ROOT, '../shared/data/animind-conservative');
const BOM = '\uFEFF';

const root = tempDir('semantic-ids');
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;

/** `<L1_code><L2_code>…<L8_code>`, or only the first `levels` tokens. */
const sidOf = (code: number, levels = SID_LEVELS) =>
  Array.from({ length: levels }, (_, k) => `<L${k + 1}_${code}>`).join('');
const line = (anime_id: unknown, semantic_id: string) => JSON.stringify({ anime_id, semantic_id });

interface Read {
  /** The rows the source handed on, when the run succeeded. */
  rows?: { anime_id: number; semantic_id: string }[];
  /** The one line the CLI would print, and its exit code, when it failed. */
  error?: string;
  code?: number;
  ids: string;
  plan?: Awaited<ReturnType<typeof loadTestPlan>>;
}

interface Setup {
  /** semantic_vocab.json beside the file: a copy of the bundled one, or this text. */
  vocabBeside?: 'bundled' | string;
  /** The `vocabulary` option: other_vocab.json in the same folder, holding this text. */
  vocabulary?: string;
  /** The file to read instead of writing `text` (the bundled or the real artifact). */
  file?: string;
  source?: 'semantic-ids-source' | 'jsonl-source';
}

/** semantic_vocab.json's layout: the special tokens, then the level tokens. */
const vocabJson = (tokens: string[]) =>
  JSON.stringify({ special_tokens: ['<anime_start>'], tokens: ['<anime_start>', ...tokens] });

/** Writes `text` as semantic_ids.jsonl in a fresh folder and runs the source on it. */
async function readIds(text: string, setup: Setup = {}): Promise<Read> {
  const dir = path.join(root, String(++folders));
  mkdirSync(dir);
  const ids = setup.file ?? path.join(dir, 'semantic_ids.jsonl');
  if (!setup.file) writeFileSync(ids, text);
  if (setup.vocabBeside === 'bundled') copyFileSync(BUNDLED_VOCAB, path.join(dir, VOCAB_FILE));
  else if (setup.vocabBeside !== undefined) writeFileSync(path.join(dir, VOCAB_FILE), setup.vocabBeside);
  if (setup.vocabulary !== undefined) writeFileSync(path.join(dir, 'other_vocab.json'), setup.vocabulary);
  const pipeline = path.join(dir, 'ids.yaml');
  writeFileSync(
    pipeline,
    [
      'name: ids',
      'nodes:',
      '  semantic_ids:',
      `    use: ${setup.source ?? 'semantic-ids-source'}`,
      `    path: ${JSON.stringify(ids)}`,
      ...(setup.vocabulary === undefined ? [] : ['    vocabulary: other_vocab.json']),
      '  write:',
      '    use: jsonl-sink',
      '    from: semantic_ids',
      '    path: out.jsonl',
      '',
    ].join('\n'),
  );
  let plan: Read['plan'];
  try {
    plan = await loadTestPlan(pipeline);
    await runPlan(plan, { reporter: createReporter({ mode: 'quiet', format: 'text' }) });
  } catch (error) {
    if (!(error instanceof AnimindError)) throw error;
    const lines = error instanceof ValidationError ? error.problems.map((p) => p.oneLine()) : [error.oneLine()];
    assert.equal(lines.length, 1, lines.join('\n'));
    return { error: lines[0]!, code: error.exitCode, ids, plan };
  }
  const out = readFileSync(path.join(dir, 'out.jsonl'), 'utf8').split('\n').filter(Boolean);
  return { rows: out.map((row) => JSON.parse(row) as { anime_id: number; semantic_id: string }), ids, plan };
}

/** Asserts the run failed with a data error (exit 1) at `file:line` saying each of `says`. */
function assertDataError(read: Read, lineNumber: number, ...says: string[]): void {
  assert.equal(read.rows, undefined, 'the run should have failed');
  assert.equal(read.code, 1, read.error);
  assert.ok(read.error!.startsWith(`${read.ids}:${lineNumber}: `), `${read.error} should start with the file:line`);
  for (const text of says) assert.ok(read.error!.includes(text), `${read.error}\nshould say: ${text}`);
}

describe("an anime's semantic ID is 8 level tokens <L1_n>…<L8_n> run together, level k at position k", () => {
  test("well-formed IDs are read as they are, such as the original tool's test IDs", async () => {
    const read = await readIds([line(1, sidOf(1)), '', line(2, sidOf(2047))].join('\n'));
    assert.deepEqual(read.rows, [
      { anime_id: 1, semantic_id: sidOf(1), name: null, english_name: null, genres: null, tokens: [], codes: [] },
      { anime_id: 2, semantic_id: sidOf(2047), name: null, english_name: null, genres: null, tokens: [], codes: [] },
    ]);
  });

  test('an ID of 5 tokens, or of 9, is an error naming the file and line', async () => {
    assertDataError(await readIds([line(1, sidOf(1)), line(2, sidOf(2, 5))].join('\n')), 2, 'anime_id 2', 'got 5');
    assertDataError(await readIds(line(1, sidOf(1) + '<L9_1>')), 1, 'expected 8 level tokens', 'got 9');
  });

  test('anything between or around the tokens, or a number written with a leading zero, is an error', async () => {
    for (const bad of [sidOf(1).replace('><', '> <'), `${sidOf(1)}x`, sidOf(1).replace('<L3_1>', '<L3_01>')])
      assertDataError(await readIds(line(7, bad)), 1, 'semantic_id of anime_id 7', 'run together', JSON.stringify(bad));
  });

  test('a token at the wrong level is an error naming its position', async () => {
    const swapped = sidOf(1).replace('<L2_1><L3_1>', '<L3_1><L2_1>');
    assertDataError(await readIds(line(4, swapped)), 1, 'token 2 is <L3_1>: expected <L2_n>');
  });

  test('anime_id must be a JSON integer: "12", a string, is an error, not read as 12', async () => {
    assertDataError(await readIds(line('12', sidOf(12))), 1, 'anime_id: expected an integer, got "12"');
    assertDataError(await readIds(line(12.5, sidOf(12))), 1, 'anime_id: expected an integer, got 12.5');
  });

  test('two anime sharing one ID is an error naming both lines', async () => {
    const read = await readIds([line(1, sidOf(1)), line(5, sidOf(5)), line(6, sidOf(6)), line(9, sidOf(5))].join('\n'));
    assertDataError(read, 4, `duplicate semantic_id ${sidOf(5)}`, 'anime_id 9', 'anime_id 5 at line 2');
  });
});

describe('the vocabulary: semantic_vocab.json beside semantic_ids.jsonl, or the vocabulary option', () => {
  const outside = sidOf(1).replace('<L1_1>', '<L1_99999>');

  test('with semantic_vocab.json beside the file, a token outside it is an error naming the vocabulary', async () => {
    const read = await readIds([line(1, sidOf(1)), line(2, outside)].join('\n'), { vocabBeside: 'bundled' });
    assertDataError(
      read,
      2,
      'token <L1_99999> is not in the vocabulary',
      path.join(path.dirname(read.ids), VOCAB_FILE),
    );
  });

  test('with no vocabulary beside the file, only the shape and order of the tokens are checked', async () => {
    assert.deepEqual((await readIds(line(1, outside))).rows?.length, 1);
  });

  test('the vocabulary option names another file, which replaces the one beside', async () => {
    const levelOnes = Array.from({ length: SID_LEVELS }, (_, k) => `<L${k + 1}_1>`);
    const read = await readIds([line(1, sidOf(1)), line(2, sidOf(2))].join('\n'), {
      vocabBeside: 'bundled',
      vocabulary: vocabJson(levelOnes),
    });
    assertDataError(read, 2, 'token <L1_2> is not in the vocabulary', 'other_vocab.json');
  });

  test('the vocabulary found beside the file is an input of the run, as the manifest lists it', async () => {
    const { plan } = await readIds(line(1, sidOf(1)), { vocabBeside: 'bundled' });
    const vocab = planInputFiles(plan!).find((file) => file.path.endsWith(VOCAB_FILE));
    assert.deepEqual(vocab?.usedBy, ['semantic_ids.vocabulary']);
  });

  test('a vocabulary that is no JSON, or holds no level token, stops the run before it reads (exit 2)', async () => {
    for (const [vocabulary, says] of [
      ['{"tokens": [', 'cannot read the semantic vocabulary'],
      [vocabJson([]), 'expected "tokens", a list holding level tokens'],
    ] as const) {
      const read = await readIds(line(1, sidOf(1)), { vocabulary });
      assert.equal(read.code, 2, read.error);
      assert.match(read.error!, /ids\.yaml:\d+: node 'semantic_ids': .*other_vocab\.json/);
      assert.ok(read.error!.includes(says), read.error);
    }
  });

  test('the bundled vocabulary holds every code 0-2047 of all 8 levels, so it rejects no valid ID', () => {
    const tokens = new Set((JSON.parse(readFileSync(BUNDLED_VOCAB, 'utf8')) as { tokens: string[] }).tokens);
    const missing = [];
    for (let level = 1; level <= SID_LEVELS; level++)
      for (let code = 0; code < 2048; code++)
        if (!tokens.has(`<L${level}_${code}>`)) missing.push(`<L${level}_${code}>`);
    assert.deepEqual(missing, []);
  });

  test('the bundled artifact passes against the vocabulary beside it', async () => {
    assert.equal((await readIds('', { file: BUNDLED_IDS })).rows?.length, 800);
  });

  test(
    'the real artifact passes against its own vocabulary: every one of its 17,562 IDs',
    { skip: !existsSync(path.join(REAL_ARTIFACT, VOCAB_FILE)) && `${REAL_ARTIFACT} is not here` },
    async () => {
      const read = await readIds('', { file: path.join(REAL_ARTIFACT, 'semantic_ids.jsonl') });
      assert.equal(read.rows?.length, 17_562, read.error);
    },
  );
});

describe('a UTF-8 byte-order mark (BOM) at the start of a JSON-lines file is skipped', () => {
  const collect = async (file: string, chunkBytes: number) => {
    const lines = [];
    for await (const batch of readLineBatches(file, 2, undefined, chunkBytes)) lines.push(...batch);
    return lines;
  };

  test('readLineBatches drops it, even read a byte at a time, and keeps one later in the file', async () => {
    const file = path.join(root, 'bom.txt');
    writeFileSync(file, `${BOM}first\n${BOM}second\nthird`);
    for (const chunkBytes of [1, 2, 1 << 20])
      assert.deepEqual(await collect(file, chunkBytes), [
        { number: 1, text: 'first' },
        { number: 2, text: `${BOM}second` },
        { number: 3, text: 'third' },
      ]);
  });

  test('semantic_ids.jsonl and any jsonl-source file may start with one', async () => {
    const text = `${BOM}${[line(1, sidOf(1)), line(2, sidOf(2))].join('\n')}\n`;
    assert.deepEqual(
      (await readIds(text)).rows?.map((row) => row.anime_id),
      [1, 2],
    );
    assert.deepEqual(
      (await readIds(text, { source: 'jsonl-source' })).rows?.map((row) => row.anime_id),
      [1, 2],
    );
  });

  test('one at the start of a later line (two files joined) is an error that says so', async () => {
    const read = await readIds([line(1, sidOf(1)), BOM + line(2, sidOf(2))].join('\n'));
    assertDataError(read, 2, 'invalid JSON: the line starts with a byte-order mark (U+FEFF)');
  });
});

describe("llm_prep_summary.json keeps the original tool's keys beside its own", () => {
  let summary: {
    generated_at: string;
    quotas: Record<string, number>;
    counts: Record<string, number>;
    pools: Record<'A' | 'B' | 'C' | 'C_seeds', number>;
    pool_sizes: Record<string, number>;
    inputs: Record<string, number>;
    semantic_rows: number;
    anime_meta_rows: number;
    timings: { generated_at: string };
  };
  // prep.yaml on the golden fixture, whose summary is test/golden/prep/llm_prep_summary.json byte for byte.
  before(async () => {
    const outDir = await produceGolden(1024);
    summary = JSON.parse(readFileSync(path.join(outDir, 'llm_prep_summary.json'), 'utf8')) as typeof summary;
    rmSync(outDir, { recursive: true, force: true });
  });

  test('the original\'s tests read summary["counts"]["task_a"], task_b and task_c: the A, B and C counts', () => {
    assert.deepEqual(summary.counts, { A: 150, B: 75, C: 75, total: 300, task_a: 150, task_b: 75, task_c: 75 });
    assert.deepEqual(summary.quotas, { A: 150, B: 75, C: 75, task_a: 150, task_b: 75, task_c: 75 });
  });

  test("generated_at, pool_sizes, semantic_rows and anime_meta_rows carry the same numbers as this tool's keys", () => {
    assert.equal(summary.generated_at, summary.timings.generated_at);
    const { A, B, C, C_seeds } = summary.pools;
    assert.deepEqual(summary.pool_sizes, { task_a_pool: A, task_b_pool: B, task_c_pool: C, task_c_seed_pool: C_seeds });
    assert.equal(summary.semantic_rows, summary.inputs.semantic_id_rows);
    // The original loaded only the anime rows with a semantic ID.
    assert.equal(summary.anime_meta_rows, summary.inputs.anime_with_semantic_id_and_metadata);
  });

  test("every field keeps its order, the original's keys beside the fields they repeat", () => {
    assert.deepEqual(Object.keys(summary), [
      'generated_at',
      'seed',
      'target_examples',
      'splits',
      'quotas',
      'counts',
      'pools',
      'pool_sizes',
      'oversampling_factor',
      'template_counts',
      'inputs',
      'semantic_rows',
      'anime_meta_rows',
      'users',
      'cleaning',
      'distinct_row_share',
      'timings',
    ]);
  });
});
