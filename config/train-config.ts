import { z } from 'zod';
import { parseSection, readToml, resolveFrom } from './toml.ts';

/** A sub-table whose keys all have defaults, so the whole table may be left out. */
const table = <T extends z.core.$ZodLooseShape>(shape: T) =>
  z.strictObject(shape).prefault({} as z.input<z.ZodObject<T, z.core.$strict>>);

const positive = () => z.int().min(1);
const nonNegative = () => z.number().min(0);

/** A phase's keys; each sets a parameter of train.yaml, whose default applies when it is left out. */
const phase = () =>
  table({
    epochs: positive().optional(),
    weight_task_a: nonNegative().optional(),
    weight_task_b: nonNegative().optional(),
    weight_task_c: nonNegative().optional(),
    /** 0 = no cap. */
    max_domain_rows: z.int().min(0).optional(),
  });

/**
 * `[train]` with the original tool's key names (docs/train.md). Keys that set a parameter of
 * pipelines/train.yaml (TRAIN_PARAMS in cli/run-train-phase.ts) have no default here: the
 * parameter's applies when they are left out, so each setting has one default. The others
 * (phase 2, the general mix, W&B, …) are the trainer's own and keep theirs here.
 */
export const trainSchema = z.strictObject({
  base_model: z.string().min(1).optional(),
  dry_run_model_name: z.string().min(1).default('sshleifer/tiny-gpt2'),
  train_jsonl: z.string().min(1).optional(),
  out_dir: z.string().min(1),
  env_file: z.string().default('../.env'),
  rebuild: z.boolean().default(true),
  seed: z.int().optional(),
  device: z
    .string()
    .regex(/^(auto|cpu|cuda|cuda:\d+)$/, 'expected auto, cpu, cuda or cuda:N')
    .optional(),
  precision: z.enum(['auto', 'fp32', 'fp16', 'bf16']).optional(),
  max_seq_len: positive().optional(),
  learning_rate: z.number().positive().optional(),
  weight_decay: nonNegative().optional(),
  warmup_ratio: z.number().min(0).max(1).optional(),
  per_device_train_batch_size: positive().optional(),
  per_device_eval_batch_size: positive().optional(),
  gradient_accumulation_steps: positive().optional(),
  gradient_checkpointing: z.union([z.boolean(), z.literal('auto')]).optional(),
  // Not the original tool's: how the GPU runs (docs/train.md, "Speed").
  micro_batch_rows: z.union([positive(), z.literal('auto')]).optional(),
  memory_budget_gib: z.union([z.number().positive(), z.literal('auto')]).optional(),
  attention: z.enum(['auto', 'sdpa', 'flex', 'varlen']).optional(),
  head_loss: z.enum(['chunked', 'plain']).optional(),
  compile: z.boolean().optional(),
  max_grad_norm: nonNegative().optional(),
  checkpoint_every_steps: positive().optional(),
  save_total_limit: positive().optional(),
  resume_from: z.string().optional(),
  // Not the original tool's: several GPUs and machines (torchrun's names).
  nproc_per_node: z.union([positive(), z.literal('auto')]).optional(),
  nnodes: positive().optional(),
  node_rank: z.int().min(0).optional(),
  master_addr: z.string().min(1).optional(),
  master_port: z.int().min(1).max(65535).optional(),
  hf_token: z.string().optional(),
  hf_token_env: z.string().optional(),
  dry_run: z.boolean().optional(),
  dry_run_max_steps: positive().optional(),
  dry_run_sample_rows: positive().optional(),
  dry_run_out_subdir: z.string().min(1).optional(),
  lora: table({
    enabled: z.boolean().optional(),
    r: positive().optional(),
    alpha: z.number().positive().optional(),
    dropout: z.number().min(0).max(1).optional(),
    target_modules: z.array(z.string().min(1)).min(1).optional(),
  }),
  tokens: z.strictObject({
    semantic_vocab_path: z.string().min(1),
    add_special_tokens: z.boolean().default(true),
    warm_start: table({
      enabled: z.boolean().optional(),
      semantic_ids_path: z.string().optional(),
      rqvae_checkpoint_path: z.string().optional(),
      ridge_lambda: z.number().positive().optional(),
      max_fit_samples: positive().optional(),
    }).superRefine((w, issues) => {
      if (w.enabled !== true) return;
      for (const key of ['semantic_ids_path', 'rqvae_checkpoint_path'] as const)
        if (!w[key])
          issues.addIssue({ code: 'custom', path: [key], message: 'required when warm_start.enabled = true' });
    }),
  }),
  phase1: phase(),
  phase2: phase(),
  general_mix: table({
    ratio: z.number().min(0).lt(1).optional(),
    sources: z.array(z.string().min(1)).optional(),
    max_rows_per_source: positive().optional(),
    cache_dir: z.string().optional(),
    seed: z.int().optional(),
  }),
  eval: table({
    english_eval_dataset: z.string().min(1).optional(),
    eval_every_steps: positive().optional(),
    eval_max_samples: positive().optional(),
    eval_batch_size: positive().optional(),
  }),
  export_merged: z.boolean().optional(),
  wandb: table({
    enabled: z.boolean().optional(),
    mode: z.enum(['offline', 'online']).optional(),
    project: z.string().optional(),
    entity: z.string().optional(),
    api_key: z.string().optional(),
    run_name: z.string().optional(),
    group: z.string().optional(),
    tags: z.array(z.string()).optional(),
    project_env: z.string().optional(),
    entity_env: z.string().optional(),
    api_key_env: z.string().optional(),
  }),
});

export type TrainConfig = z.output<typeof trainSchema>;

/** The validated `[train]` section; every path is resolved against the config file's folder (empty stays unset). */
export function loadTrainConfig(file: string): TrainConfig {
  const toml = readToml(file);
  const config = parseSection(toml, 'train', trainSchema);
  const resolve = resolveFrom(toml.dir);
  const resolveSet = (value: string | undefined) => (value === undefined ? undefined : resolve(value));
  const { tokens, general_mix } = config;
  return {
    ...config,
    train_jsonl: config.train_jsonl === undefined ? undefined : resolve(config.train_jsonl),
    out_dir: resolve(config.out_dir),
    env_file: resolve(config.env_file),
    // `latest` is a word, not a path.
    resume_from:
      config.resume_from === undefined || config.resume_from === 'latest'
        ? config.resume_from
        : resolve(config.resume_from),
    tokens: {
      ...tokens,
      semantic_vocab_path: resolve(tokens.semantic_vocab_path),
      warm_start: {
        ...tokens.warm_start,
        semantic_ids_path: resolveSet(tokens.warm_start.semantic_ids_path),
        rqvae_checkpoint_path: resolveSet(tokens.warm_start.rqvae_checkpoint_path),
      },
    },
    general_mix:
      general_mix.cache_dir === undefined ? general_mix : { ...general_mix, cache_dir: resolve(general_mix.cache_dir) },
  };
}
