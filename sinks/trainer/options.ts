import path from 'node:path';
import { z } from 'zod';
import { outputFolder } from '../../engine/options.ts';
import { flag, int, num, stringList } from '../../transforms/train/option-types.ts';
import { extendedTokenizerOptions } from '../../transforms/train/tokenizer-options.ts';

/** The [train] keys the worker acts on, under their config names (LoRA keys flattened as lora_*). */
export const trainerOptions = z.strictObject({
  ...extendedTokenizerOptions,
  python: z
    .string()
    .default('')
    .describe('Python interpreter for the worker, used when ANIMIND_PYTHON is unset and no trainer venv is cached'),
  out_dir: outputFolder('run folder: final_model/, tokenizer/, phase checkpoints, train_run_summary.json'),
  dry_run: flag(true).describe('small capped run; outputs go to out_dir/dry_run_out_subdir'),
  dry_run_out_subdir: z.string().min(1).default('dry_run').describe('sub-folder of out_dir for dry runs'),
  dry_run_max_steps: int().positive().default(20).describe('caps the checkpoint interval in a dry run'),
  tiny_model: flag(false).describe('train a tiny random model with the base tokenizer (tests, no download)'),
  device: z
    .string()
    .regex(/^(auto|cpu|cuda(:\d+)?)$/)
    .default('auto')
    .describe('auto, cpu, cuda or cuda:N'),
  precision: z.enum(['auto', 'fp32', 'fp16', 'bf16']).default('auto'),
  max_seq_len: int().positive().default(1024),
  learning_rate: num().positive().default(2e-4),
  weight_decay: num().min(0).default(0),
  warmup_ratio: num().min(0).lt(1).default(0.03),
  gradient_accumulation_steps: int().positive().default(16),
  per_device_train_batch_size: int().positive().default(1).describe('rows per micro-batch the feeder sends'),
  gradient_checkpointing: z
    .union([z.boolean(), z.literal('auto')])
    .default('auto')
    .describe("recompute activations; auto: from the GPU's memory, off on the CPU"),
  micro_batch_rows: z
    .union([int().positive(), z.literal('auto')])
    .default('auto')
    .describe("rows the GPU trains at once out of a step's rows; auto: the most that fit, as sent on the CPU"),
  memory_budget_gib: z
    .union([num().positive(), z.literal('auto')])
    .default('auto')
    .describe('GPU memory the run may use; auto: the whole GPU'),
  attention: z.enum(['auto', 'sdpa', 'flex', 'varlen']).default('auto').describe('attention kernel for packed rows'),
  head_loss: z.enum(['chunked', 'plain']).default('chunked').describe('output head and cross-entropy'),
  compile: flag(false).describe('torch.compile each decoder layer'),
  max_grad_norm: num().min(0).default(1),
  checkpoint_every_steps: int().positive().default(500),
  save_total_limit: int().nonnegative().default(3),
  hf_token: z.string().default('').describe('Hugging Face token; prefer hf_token_env'),
  hf_token_env: z.string().default('HF_TOKEN').describe('environment variable holding the Hugging Face token'),
  lora_enabled: flag(true),
  lora_r: int().positive().default(16),
  lora_alpha: int().positive().default(32),
  lora_dropout: num().min(0).lt(1).default(0.05),
  lora_target_modules: stringList(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']),
  stop_grace_s: num().positive().default(10).describe('seconds between SIGTERM and SIGKILL when stopping the worker'),
  log_every_steps: int().positive().default(10).describe('a progress line every this many optimizer steps'),
  warm_start_enabled: flag(false).describe('start the level-token rows from a ridge projection of the RQ-VAE codebook'),
  warm_start_semantic_ids_path: z
    .string()
    .default('')
    .describe('semantic_ids.jsonl whose anime (codes, title) fit the warm start, relative to the working directory'),
  warm_start_rqvae_checkpoint_path: z
    .string()
    .default('')
    .describe('RQ-VAE checkpoint with model_state_dict["quantizer.codebook"], relative to the working directory'),
  warm_start_ridge_lambda: num().positive().default(0.001).describe("ridge penalty of the warm start's fit"),
  warm_start_max_fit_samples: int().positive().default(50000).describe('at most this many anime fit the warm start'),
  nproc_per_node: z
    .union([int().positive(), z.literal('auto')])
    .default('auto')
    .describe('workers (GPUs) on this machine; auto: every visible GPU, 1 on the CPU'),
  nnodes: int().positive().default(1).describe('machines in the run'),
  node_rank: int().nonnegative().default(0).describe("this machine's rank among nnodes"),
  master_addr: z.string().min(1).default('127.0.0.1').describe("rank 0's machine (torch.distributed's MASTER_ADDR)"),
  master_port: int().min(1).max(65535).default(29500).describe("rank 0's port (MASTER_PORT)"),
  resume_from: z
    .string()
    .default('')
    .describe(
      'a checkpoint folder, or latest: the furthest checkpoint of this run folder or of an interrupted run beside it',
    ),
  export_merged: flag(false).describe('also write merged/: LoRA and new rows merged into the base, for vLLM'),
  wandb_enabled: flag(false).describe('log metrics to Weights & Biases'),
  wandb_mode: z.enum(['offline', 'online']).default('offline').describe('offline: files under the run folder'),
  wandb_project: z.string().default('').describe('W&B project; empty: the wandb_project_env variable, then animind'),
  wandb_entity: z.string().default('').describe('W&B entity; empty: the wandb_entity_env variable'),
  wandb_api_key: z.string().default('').describe('W&B key; prefer wandb_api_key_env'),
  wandb_run_name: z.string().default('').describe("W&B run name; empty: W&B's own"),
  wandb_group: z.string().default('').describe('W&B group'),
  wandb_tags: z.array(z.string().min(1)).default([]).describe('W&B tags'),
  wandb_project_env: z.string().default('WANDB_PROJECT'),
  wandb_entity_env: z.string().default('WANDB_ENTITY'),
  wandb_api_key_env: z.string().default('WANDB_API_KEY'),
});

export type TrainerOptions = z.output<typeof trainerOptions>;

export const runDir = (o: TrainerOptions) => (o.dry_run ? path.join(o.out_dir, o.dry_run_out_subdir) : o.out_dir);

/** The HELLO frame's config: what the worker needs, and what it records in train_config_snapshot.json. */
export function helloConfig(o: TrainerOptions, tokenizerDir: string, seed: number): Record<string, unknown> {
  return {
    base_model: o.base_model,
    dry_run: o.dry_run,
    tiny_model: o.tiny_model,
    tokenizer_path: tokenizerDir,
    semantic_vocab_path: o.semantic_vocab,
    out_dir: runDir(o),
    seed,
    device: o.device,
    precision: o.precision,
    max_seq_len: o.max_seq_len,
    learning_rate: o.learning_rate,
    weight_decay: o.weight_decay,
    warmup_ratio: o.warmup_ratio,
    gradient_accumulation_steps: o.gradient_accumulation_steps,
    gradient_checkpointing: o.gradient_checkpointing,
    per_device_train_batch_size: o.per_device_train_batch_size,
    micro_batch_rows: o.micro_batch_rows,
    memory_budget_gib: o.memory_budget_gib,
    attention: o.attention,
    head_loss: o.head_loss,
    compile: o.compile,
    max_grad_norm: o.max_grad_norm,
    // A dry run is short: cap the interval so it still writes (and so tests) a checkpoint.
    checkpoint_every_steps: o.dry_run
      ? Math.min(o.checkpoint_every_steps, o.dry_run_max_steps)
      : o.checkpoint_every_steps,
    save_total_limit: o.save_total_limit,
    hf_token: o.hf_token,
    hf_token_env: o.hf_token_env,
    lora: {
      enabled: o.lora_enabled,
      r: o.lora_r,
      alpha: o.lora_alpha,
      dropout: o.lora_dropout,
      target_modules: o.lora_target_modules,
    },
    warm_start: {
      enabled: o.warm_start_enabled,
      // The worker runs in the repository root: give it absolute paths (empty stays unset).
      semantic_ids_path: o.warm_start_semantic_ids_path && path.resolve(o.warm_start_semantic_ids_path),
      rqvae_checkpoint_path: o.warm_start_rqvae_checkpoint_path && path.resolve(o.warm_start_rqvae_checkpoint_path),
      ridge_lambda: o.warm_start_ridge_lambda,
      max_fit_samples: o.warm_start_max_fit_samples,
    },
    export_merged: o.export_merged,
    wandb: {
      enabled: o.wandb_enabled,
      mode: o.wandb_mode,
      project: o.wandb_project,
      entity: o.wandb_entity,
      api_key: o.wandb_api_key,
      run_name: o.wandb_run_name,
      group: o.wandb_group,
      tags: o.wandb_tags,
      project_env: o.wandb_project_env,
      entity_env: o.wandb_entity_env,
      api_key_env: o.wandb_api_key_env,
    },
  };
}
