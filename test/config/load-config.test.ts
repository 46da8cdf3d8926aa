import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadPrepConfig } from '../../config/prep-config.ts';
import { TRAIN_PARAMS } from '../../cli/run-train-phase.ts';
import { paramOverrides, readToml } from '../../config/toml.ts';
import { loadTrainConfig } from '../../config/train-config.ts';
import { ConfigError, ValidationError } from '../../engine/errors.ts';
import { readPipelineFile } from '../../engine/pipeline-file.ts';
import { helloConfig, trainerOptions } from '../../sinks/trainer/options.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tempDir } from '../sinks/prep-rows.ts';

const PREP = `[prep]
source_db = "data/anime.sqlite"
semantic_ids_path = "../shared/semantic_ids.jsonl"
out_dir = "out"
`;

function configFile(text: string): string {
  const file = path.join(tempDir('toml'), 'animind.toml');
  writeFileSync(file, text);
  return file;
}

/** The single line the CLI would print for the error `fn` throws. */
function errorLines(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error.problems.map((p) => p.oneLine());
    if (error instanceof ConfigError) return [error.oneLine()];
    throw error;
  }
  assert.fail('expected a ConfigError');
}

describe('[prep] config', () => {
  test('the shipped config has the original defaults and points at the bundled fixtures', () => {
    const config = loadPrepConfig(path.join(repoRoot, 'config/recommender.toml'));
    assert.deepEqual(config, {
      source_db: path.join(repoRoot, 'fixtures/anime.sqlite'),
      semantic_ids_path: path.join(repoRoot, 'fixtures/semantic_ids.jsonl'),
      out_dir: path.join(repoRoot, 'out/prep'),
      rebuild: true,
      seed: 42,
      target_examples: 400000,
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
  });

  test('scan_workers takes a whole number or "auto", and says so for anything else', () => {
    assert.equal(loadPrepConfig(configFile(`${PREP}scan_workers = 4\n`)).scan_workers, 4);
    const file = configFile(`${PREP}scan_workers = "many"\n`);
    assert.deepEqual(
      errorLines(() => loadPrepConfig(file)),
      [`${file}:5: key 'prep.scan_workers': expected a whole number of threads, or "auto"`],
    );
  });

  test('relative paths resolve against the config file, not the working directory', () => {
    const file = configFile(PREP);
    const dir = path.dirname(file);
    const config = loadPrepConfig(file);
    assert.equal(config.source_db, path.join(dir, 'data/anime.sqlite'));
    assert.equal(config.semantic_ids_path, path.resolve(dir, '../shared/semantic_ids.jsonl'));
    assert.equal(config.out_dir, path.join(dir, 'out'));
  });

  test('an unknown key names the key, the file and its line, with the likely intended key', () => {
    const file = configFile(`${PREP}task_b_max_histroy = 20\n`);
    assert.deepEqual(
      errorLines(() => loadPrepConfig(file)),
      [`${file}:5: unknown key 'task_b_max_histroy' in [prep] (did you mean 'task_b_max_history'?)`],
    );
  });

  test('a wrong type names the key, the expected type and what was found', () => {
    const file = configFile(`${PREP}seed = "42"\nexport_parquet = 1\n`);
    assert.deepEqual(
      errorLines(() => loadPrepConfig(file)),
      [
        `${file}:5: key 'prep.seed': expected integer, got string "42"`,
        `${file}:6: key 'prep.export_parquet': expected boolean, got number 1`,
      ],
    );
  });

  test('a bad list element points at its key', () => {
    const file = configFile(`${PREP}task_b_mask_modes = ["last",\n  "first"]\n`);
    const [line] = errorLines(() => loadPrepConfig(file));
    assert.match(line!, /:5: key 'prep\.task_b_mask_modes\.1': .*"last"\|"random"/);
  });

  test('splits that do not sum to 1 are an error at split_task_a', () => {
    const file = configFile(`${PREP}split_task_a = 0.5\nsplit_task_b = 0.3\nsplit_task_c = 0.25\n`);
    assert.deepEqual(
      errorLines(() => loadPrepConfig(file)),
      [
        `${file}:5: key 'prep.split_task_a': ` +
          'split_task_a + split_task_b + split_task_c must sum to 1 (±1e-6), got 0.5 + 0.3 + 0.25 = 1.05',
      ],
    );
  });

  test('a missing path key points at the [prep] header', () => {
    const file = configFile(`# settings\n[prep]\nsource_db = "a.sqlite"\nout_dir = "out"\n`);
    assert.deepEqual(
      errorLines(() => loadPrepConfig(file)),
      [`${file}:2: key 'prep.semantic_ids_path': expected string, got nothing`],
    );
  });

  test(
    'TOML syntax errors, unknown sections and a missing ' + '[prep] are config errors with a line where there is one',
    () => {
      const syntax = configFile(`${PREP}seed = = 4\n`);
      assert.match(errorLines(() => loadPrepConfig(syntax))[0]!, new RegExp(`^${syntax}:5: invalid TOML: `));
      const section = configFile(`${PREP}\n[prepp]\nseed = 1\n`);
      assert.deepEqual(
        errorLines(() => loadPrepConfig(section)),
        [`${section}:6: unknown top-level key 'prepp': expected the sections [prep], [train], [eval]`],
      );
      const none = configFile(`[train]\nout_dir = "x"\n`);
      assert.deepEqual(
        errorLines(() => loadPrepConfig(none)),
        [`${none}: no [prep] section: the prep phase reads its settings from it`],
      );
    },
  );
});

describe('[train] config', () => {
  test('the shipped config validates, with every path resolved against the config folder', () => {
    const config = loadTrainConfig(path.join(repoRoot, 'config/recommender.toml'));
    assert.equal(config.base_model, 'deepseek-ai/DeepSeek-R1-Distill-Qwen-14B');
    assert.equal(config.train_jsonl, path.join(repoRoot, 'out/prep/llm_prep_train.jsonl'));
    assert.equal(config.out_dir, path.join(repoRoot, 'out/train'));
    assert.equal(config.env_file, path.join(repoRoot, '.env'));
    assert.equal(config.resume_from, '');
    assert.equal(config.tokens.semantic_vocab_path, path.join(repoRoot, 'fixtures/semantic_vocab.json'));
    assert.equal(config.tokens.warm_start.rqvae_checkpoint_path, '');
    assert.deepEqual(config.lora, {
      enabled: true,
      r: 16,
      alpha: 32,
      dropout: 0.05,
      target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    });
    assert.deepEqual(config.phase2, {
      epochs: 3,
      weight_task_a: 0.1,
      weight_task_b: 0.45,
      weight_task_c: 0.45,
      max_domain_rows: 0,
    });
    assert.deepEqual(config.general_mix.sources, ['SlimOrca', 'OpenHermes']);
    assert.equal(config.wandb.api_key_env, 'WANDB_API_KEY');
  });

  test(
    'left-out tables take the original defaults; left-out keys ' +
      "that set train.yaml's params stay unset, so its defaults apply",
    () => {
      const file = configFile(`[train]\nout_dir = "runs"\n[train.tokens]\nsemantic_vocab_path = "vocab.json"\n`);
      const config = loadTrainConfig(file);
      assert.equal(config.out_dir, path.join(path.dirname(file), 'runs'));
      assert.deepEqual(config.phase1, {});
      assert.deepEqual(config.phase2, {});
      assert.deepEqual(config.general_mix, {});
      for (const unset of [config.train_jsonl, config.eval.eval_every_steps, config.precision, config.seed])
        assert.equal(unset, undefined);
    },
  );

  test('problems in nested tables name the dotted key and its line', () => {
    const file = configFile(
      `[train]\nout_dir = "runs"\ndevice = "gpu"\n[train.tokens]\nsemantic_vocab_path = "v.json"\n` +
        `[train.tokens.warm_start]\nenabled = true\n[train.lora]\nrank = 8\n`,
    );
    assert.deepEqual(
      errorLines(() => loadTrainConfig(file)),
      [
        `${file}:3: key 'train.device': expected auto, cpu, cuda or cuda:N`,
        `${file}:6: key 'train.tokens.warm_start.semantic_ids_path': required when warm_start.enabled = true`,
        `${file}:6: key 'train.tokens.warm_start.rqvae_checkpoint_path': required when warm_start.enabled = true`,
        `${file}:9: unknown key 'rank' in [train.lora]; known keys: enabled, r, alpha, dropout, target_modules`,
      ],
    );
  });

  /** The HELLO config the trainer-sink would send for a config file: TOML -> train.yaml params -> node options. */
  function helloFor(file: string): Record<string, unknown> {
    const overrides = paramOverrides(readToml(file), 'train', TRAIN_PARAMS, loadTrainConfig(file));
    const { spec, problems } = readPipelineFile(path.join(repoRoot, 'pipelines/train.yaml'), { overrides });
    assert.deepEqual(problems, []);
    const train = spec.nodes.find((node) => node.id === 'train')!;
    return helloConfig(trainerOptions.parse(train.options), 'tokenizer', 42);
  }

  test('[train.tokens.warm_start] reaches the worker as HELLO config.warm_start, paths resolved', () => {
    const file = configFile(
      `[train]\nout_dir = "runs"\n[train.tokens]\nsemantic_vocab_path = "v.json"\n` +
        `[train.tokens.warm_start]\nenabled = true\nsemantic_ids_path = "ids.jsonl"\n` +
        `rqvae_checkpoint_path = "rqvae.pt"\nridge_lambda = 0.5\nmax_fit_samples = 1000\n`,
    );
    assert.deepEqual(helloFor(file).warm_start, {
      enabled: true,
      semantic_ids_path: path.join(path.dirname(file), 'ids.jsonl'),
      rqvae_checkpoint_path: path.join(path.dirname(file), 'rqvae.pt'),
      ridge_lambda: 0.5,
      max_fit_samples: 1000,
    });
    const off = configFile(`[train]\nout_dir = "runs"\n[train.tokens]\nsemantic_vocab_path = "v.json"\n`);
    assert.deepEqual(helloFor(off).warm_start, {
      enabled: false,
      semantic_ids_path: '',
      rqvae_checkpoint_path: '',
      ridge_lambda: 0.001,
      max_fit_samples: 50000,
    });
  });
});
