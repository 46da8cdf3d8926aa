import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { findPython } from '../../sinks/trainer/python.ts';
import { repoRoot, runCli } from '../helpers/cli.ts';
import { trainArgs } from '../train/train-cli.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'animind-eval-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const prepDir = path.join(dir, 'prep');
const runDir = path.join(dir, 'train', 'dry_run');
const semanticIds = path.join(repoRoot, 'fixtures/semantic_ids.jsonl');
let env: NodeJS.ProcessEnv;

/** The bundled fixtures through prep (a tenth of the users held out for test) and a short tiny-model train. */
before(async () => {
  env = { ANIMIND_PYTHON: await findPython('') };
  const prep = await runCli([
    'pipeline',
    'run',
    'pipelines/prep.yaml',
    ...['--set', `out_dir=${prepDir}`, '--set', 'target_examples=1500', '--set', 'holdout_test=0.1'],
  ]);
  assert.equal(prep.code, 0, prep.stderr.slice(-3000));
  const train = await runCli(
    trainArgs(path.join(prepDir, 'llm_prep_train.jsonl'), path.join(dir, 'train'), {
      dry_run_max_steps: 2,
      gradient_accumulation_steps: 1,
    }),
    { env },
  );
  assert.equal(train.code, 0, train.stderr.slice(-3000));
});

test(
  'eval scores the trained model and the three baselines on the held-out users and writes the report',
  { timeout: 300_000 },
  async () => {
    const out = path.join(dir, 'eval');
    const run = await runCli(
      [
        'pipeline',
        'run',
        'pipelines/eval.yaml',
        ...['--set', `prep_dir=${prepDir}`, '--set', `run_dir=${runDir}`, '--set', `out_dir=${out}`],
        ...['--set', 'sasrec_epochs=2', '--set', 'max_users=6', '--set', 'device=cpu'],
      ],
      { env },
    );
    assert.equal(run.code, 0, run.stderr.slice(-3000));
    assert.match(
      run.stderr,
      /eval: 6 held-out users; Recall@10 llm [\d.]+, most_popular [\d.]+, item_knn [\d.]+, sasrec/,
    );
    const metrics = JSON.parse(readFileSync(path.join(out, 'eval_metrics.json'), 'utf8'));
    assert.deepEqual(Object.keys(metrics.models).sort(), ['item_knn', 'llm', 'most_popular', 'sasrec']);
    assert.equal(metrics.exclude_history, true);
    assert.equal(typeof metrics.models.llm.invalid_id_rate, 'number');
    const html = readFileSync(path.join(out, 'eval_report.html'), 'utf8');
    assert.ok((html.match(/src="data:image\/png;base64,/g) ?? []).length >= 3, 'plots embedded');
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href="http/, 'nothing fetched from outside');
  },
);

test('recommend prints valid anime for a history, and one line for an unknown one', { timeout: 120_000 }, async () => {
  const catalog = new Set(
    readFileSync(semanticIds, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { anime_id: number }).anime_id),
  );
  const base = ['recommend', '--run', runDir, '--semantic-ids', semanticIds, '--device', 'cpu', '--top-k', '4'];
  const run = await runCli([...base, '--history', '1,5,Cowboy Bebop: Tengoku no Tobira', '--json'], { env });
  assert.equal(run.code, 0, run.stderr.slice(-2000));
  const items = run.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { rank: number; anime_id: number; title: string; semantic_id: string });
  assert.deepEqual(
    items.map((i) => i.rank),
    [1, 2, 3, 4],
  );
  for (const item of items) assert.ok(catalog.has(item.anime_id) && item.title && item.semantic_id.startsWith('<L1_'));
  assert.ok(
    items.every((i) => ![1, 5].includes(i.anime_id)),
    'the history is left out',
  );

  const unknown = await runCli([...base, '--history', '1,999999999'], { env });
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr, 'error: --history: unknown anime id 999999999: no anime has it\n');
});
