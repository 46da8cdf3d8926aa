import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Manifest } from '../../sinks/manifest-sink.ts';
import { repoRoot, runCli } from '../helpers/cli.ts';
import { tempDir } from '../sinks/prep-rows.ts';

const TIME = { ANIMIND_FIXED_TIME: '2024-01-01T00:00:00Z' };

/** A config in a fresh folder next to its own copies of the fixtures, so a test may change an input. */
function project(settings = ''): { dir: string; config: string; out: string } {
  const dir = tempDir('run-phase');
  copyFileSync(path.join(repoRoot, 'fixtures/anime.sqlite'), path.join(dir, 'anime.sqlite'));
  copyFileSync(path.join(repoRoot, 'fixtures/semantic_ids.jsonl'), path.join(dir, 'semantic_ids.jsonl'));
  const config = path.join(dir, 'conf/animind.toml');
  writeConfig(config, settings);
  return { dir, config, out: path.join(dir, 'out') };
}

function writeConfig(file: string, settings: string): void {
  const base = [
    'source_db = "../anime.sqlite"',
    'semantic_ids_path = "../semantic_ids.jsonl"',
    'out_dir = "../out"',
    'target_examples = 3000',
  ];
  const keys = new Set(settings.split('\n').map((line) => line.split('=')[0]!.trim()));
  const lines = [...base.filter((line) => !keys.has(line.split('=')[0]!.trim())), settings];
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `[prep]\n${lines.join('\n')}\n`);
}

const run = (config: string) =>
  runCli(['run', '--phase', 'prep', '--config', config, '--progress', 'lines'], { env: TIME });
const manifestOf = (out: string) =>
  JSON.parse(readFileSync(path.join(out, 'llm_prep_manifest.json'), 'utf8')) as Manifest;

describe('animind run --phase prep', () => {
  test('runs prep.yaml with the [prep] settings: JSONL, summary and manifest; Parquet only when asked', async () => {
    const { config, out } = project('seed = 7');
    const result = await run(config);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(readFileSync(path.join(out, 'llm_prep_train.jsonl'), 'utf8').trim().split('\n').length, 3000);
    assert.ok(existsSync(path.join(out, 'llm_prep_summary.json')));
    assert.equal(existsSync(path.join(out, 'llm_prep_train.parquet')), false);
    // The held-out users' examples (the default shares of users), listed with their rows.
    // …and the training users' histories, which the evaluation's baselines learn from.
    const [validRows, testRows, historyRows] = [
      'llm_prep_valid.jsonl',
      'llm_prep_test.jsonl',
      'llm_prep_train_histories.jsonl',
    ].map((name) => readFileSync(path.join(out, name), 'utf8').split('\n').filter(Boolean).length);
    assert.ok(validRows! > 0 && testRows! > 0 && historyRows! > 0);
    const manifest = manifestOf(out);
    assert.equal(manifest.seed, 7);
    assert.equal(manifest.params.target_examples, '3000');
    assert.equal(manifest.params.task_b_mask_modes, 'last,random');
    assert.deepEqual(manifest.config, {
      source_db: path.join(path.dirname(out), 'anime.sqlite'),
      semantic_ids_path: path.join(path.dirname(out), 'semantic_ids.jsonl'),
      out_dir: out,
      rebuild: true,
      seed: 7,
      target_examples: 3000,
      split_task_a: 0.5,
      split_task_b: 0.25,
      split_task_c: 0.25,
      max_task_a_templates_per_anime: 12,
      task_b_min_history: 4,
      task_b_max_history: 30,
      task_b_mask_modes: ['last', 'random'],
      task_b_positive_score_min: 7,
      task_b_allowed_statuses: [1, 2, 3, 4, 6],
      holdout_valid: 0.02,
      holdout_test: 0.02,
      export_parquet: false,
      write_manifest: true,
      scan_workers: 'auto',
    });
    assert.deepEqual(
      manifest.inputs.map((i) => [i.path, i.used_by]),
      [
        ['../semantic_ids.jsonl', ['semantic_ids.path']],
        ['../anime.sqlite', ['anime.database', 'history.database']],
      ],
    );
    assert.deepEqual(
      manifest.outputs.map((o) => [o.path, o.rows]),
      [
        ['llm_prep_train.jsonl', 3000],
        ['llm_prep_valid.jsonl', validRows],
        ['llm_prep_test.jsonl', testRows],
        ['llm_prep_train_histories.jsonl', historyRows],
        ['llm_prep_summary.json', null],
      ],
    );
  });

  test('export_parquet = true adds the Parquet file, write_manifest = false drops the manifest', async () => {
    const { config, out } = project('export_parquet = true\nwrite_manifest = false');
    const result = await run(config);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(statSync(path.join(out, 'llm_prep_train.parquet')).size > 0);
    assert.equal(existsSync(path.join(out, 'llm_prep_manifest.json')), false);
  });

  test('--set on the command line wins over the [prep] key', async () => {
    const { config, out } = project('seed = 7');
    const result = await runCli(['run', '--phase', 'prep', '--config', config, '--set', 'seed=9'], { env: TIME });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(manifestOf(out).seed, 9);
  });

  test('the same [prep] settings give the same bytes as pipeline run with the same params', async () => {
    const { config, out } = project();
    assert.equal((await run(config)).code, 0);
    const direct = path.join(path.dirname(out), 'direct');
    const args = [
      'pipeline',
      'run',
      'pipelines/prep.yaml',
      '--set',
      `database=${path.join(path.dirname(out), 'anime.sqlite')}`,
    ];
    args.push(
      '--set',
      `semantic_ids=${path.join(path.dirname(out), 'semantic_ids.jsonl')}`,
      '--set',
      'target_examples=3000',
      '--set',
      `out_dir=${direct}`,
    );
    assert.equal((await runCli(args, { env: TIME })).code, 0);
    assert.ok(
      readFileSync(path.join(out, 'llm_prep_train.jsonl')).equals(
        readFileSync(path.join(direct, 'llm_prep_train.jsonl')),
      ),
    );
  });

  test(
    'rebuild = false keeps outputs whose manifest matches, and ' +
      'rebuilds, saying why, when an input or a setting changed',
    async () => {
      const { dir, config, out } = project();
      assert.equal((await run(config)).code, 0);
      const jsonl = path.join(out, 'llm_prep_train.jsonl');
      const built = statSync(jsonl).mtimeMs;

      writeConfig(config, 'rebuild = false');
      const kept = await run(config);
      assert.equal(kept.code, 0, kept.stderr);
      assert.equal(
        kept.stderr,
        `prep: outputs in ${out} are up to date (same settings and input hashes as their manifest); nothing to do\n`,
      );
      assert.equal(statSync(jsonl).mtimeMs, built);

      // A blank line is skipped by the reader, so the data stays valid while its bytes change.
      appendFileSync(path.join(dir, 'semantic_ids.jsonl'), '\n');
      const changed = await run(config);
      assert.equal(changed.code, 0, changed.stderr);
      const why = changed.stderr.split('\n').filter((line) => line.startsWith('prep: rebuilding'));
      assert.equal(why.length, 1);
      assert.match(
        why[0]!,
        new RegExp(
          `rebuild = false: input ${path.join(dir, 'semantic_ids.jsonl')} changed: ` +
            'sha256 [0-9a-f]{12}… -> [0-9a-f]{12}…$',
        ),
      );
      assert.notEqual(statSync(jsonl).mtimeMs, built);
      assert.equal((await run(config)).stderr.includes('up to date'), true);

      // The number of scan workers never changes the bytes, so the outputs stay.
      writeConfig(config, 'rebuild = false\nscan_workers = 1');
      assert.equal((await run(config)).stderr.includes('up to date'), true);

      writeConfig(config, 'rebuild = false\ntask_b_max_history = 20');
      const setting = await run(config);
      assert.match(
        setting.stderr,
        /^prep: rebuilding although rebuild = false: \[prep\] task_b_max_history changed: 30 -> 20$/m,
      );

      writeFileSync(jsonl, 'edited\n');
      assert.match(
        (await run(config)).stderr,
        /rebuild = false: output .*llm_prep_train\.jsonl was modified after the manifest was written$/m,
      );

      writeFileSync(
        path.join(out, 'llm_prep_manifest.json'),
        JSON.stringify({ ...manifestOf(out), tool: { name: 'animind', version: '0.0.1' } }),
      );
      assert.match(
        (await run(config)).stderr,
        /rebuild = false: the outputs were written by animind 0\.0\.1, this is \d+\.\d+\.\d+$/m,
      );
    },
  );

  test(
    'a config problem exits 2 naming the file and line before ' +
      'anything runs (the [prep] header for a key left at its default)',
    async () => {
      const { config, out } = project('split_task_c = 0.5');
      const result = await run(config);
      assert.equal(result.code, 2);
      assert.equal(
        result.stderr,
        `error: ${config}:1: key 'prep.split_task_a': ` +
          'split_task_a + split_task_b + split_task_c must sum to 1 (±1e-6), got 0.5 + 0.25 + 0.5 = 1.25\n',
      );
      assert.equal(existsSync(out), false);
    },
  );

  test("a node's check of a value a [prep] key set names that key and its line, not prep.yaml's", async () => {
    const { config, out } = project('task_b_min_history = 40\ntask_b_max_history = 30');
    const result = await run(config);
    assert.equal(result.code, 2);
    const line = readFileSync(config, 'utf8').split('\n').indexOf('task_b_min_history = 40') + 1;
    assert.match(
      result.stderr,
      new RegExp(`^error: ${config}:${line}: key 'prep.task_b_min_history': node 'history': `),
    );
    assert.doesNotMatch(result.stderr, /prep\.yaml/);
    assert.equal(existsSync(out), false);
  });

  test('--phase train checks [train] before anything runs', async () => {
    const dir = tempDir('run-phase-train');
    const config = path.join(dir, 'recommender.toml');
    const text = readFileSync(path.join(repoRoot, 'config/recommender.toml'), 'utf8');
    writeFileSync(config, text.replace('learning_rate = 0.0002', 'learning_rate = "fast"'));
    const line = text.split('\n').findIndex((l) => l.startsWith('learning_rate')) + 1;
    const result = await runCli(['run', '--phase', 'train', '--config', config]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, new RegExp(`^error: .*recommender\\.toml:${line}: .*learning_rate.*\n$`));
  });
});
