import { z } from 'zod';
import { parseSection, readToml, resolveFrom } from './toml.ts';

/** A sub-table whose keys all have defaults, so the whole table may be left out. */
const table = <T extends z.core.$ZodLooseShape>(shape: T) =>
  z.strictObject(shape).prefault({} as z.input<z.ZodObject<T, z.core.$strict>>);

const positive = () => z.int().min(1);
const nonNegative = () => z.number().min(0);

const phase = (epochs: number, a: number, b: number, c: number) =>
  table({
    epochs: positive().default(epochs),
    weight_task_a: nonNegative().default(a),
    weight_task_b: nonNegative().default(b),
    weight_task_c: nonNegative().default(c),
    /** 0 = no cap. */
    max_domain_rows: z.int().min(0).default(0),
  }).refine((p) => p.weight_task_a + p.weight_task_b + p.weight_task_c > 0, {
    message: 'weight_task_a + weight_task_b + weight_task_c must be above 0',
    path: ['weight_task_a'],
  });

/** `[train]` with the original tool's key names and defaults (spec: shared/spec/train.md). */
export const trainSchema = z.strictObject({
  base_model: z.string().min(1).default('deepseek-ai/DeepSeek-R1-Distill-Qwen-14B'),
  dry_run_model_name: z.string().min(1).default('sshleifer/tiny-gpt2'),
  train_jsonl: z.string().min(1).default('../output/llm_prep_train.jsonl'),
  out_dir: z.string().min(1),
  env_file: z.string().default('../.env'),
  rebuild: z.boolean().default(true),
  seed: z.int().default(42),
  device: z
    .string()
    .regex(/^(auto|cpu|cuda|cuda:\d+)$/, 'expected auto, cpu, cuda or cuda:N')
    .default('auto'),
  precision: z.enum(['auto', 'fp32', 'fp16', 'bf16']).default('bf16'),
  max_seq_len: positive().default(1024),
  learning_rate: z.number().positive().default(0.0002),
  weight_decay: nonNegative().default(0),
  warmup_ratio: z.number().min(0).max(1).default(0.03),
  per_device_train_batch_size: positive().default(1),
  per_device_eval_batch_size: positive().default(1),
  gradient_accumulation_steps: positive().default(16),
  gradient_checkpointing: z.boolean().default(true),
  max_grad_norm: nonNegative().default(1),
  checkpoint_every_steps: positive().default(500),
  save_total_limit: positive().default(3),
  resume_from: z.string().default(''),
  hf_token: z.string().default(''),
  hf_token_env: z.string().default('HF_TOKEN'),
  dry_run: z.boolean().default(true),
  dry_run_max_steps: positive().default(20),
  dry_run_sample_rows: positive().default(2048),
  dry_run_out_subdir: z.string().min(1).default('dry_run'),
  lora: table({
    enabled: z.boolean().default(true),
    r: positive().default(16),
    alpha: z.number().positive().default(32),
    dropout: z.number().min(0).max(1).default(0.05),
    target_modules: z
      .array(z.string().min(1))
      .min(1)
      .default(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']),
  }),
  tokens: z.strictObject({
    semantic_vocab_path: z.string().min(1),
    add_special_tokens: z.boolean().default(true),
    warm_start: table({
      enabled: z.boolean().default(false),
      semantic_ids_path: z.string().default(''),
      rqvae_checkpoint_path: z.string().default(''),
      ridge_lambda: z.number().positive().default(0.001),
      max_fit_samples: positive().default(50000),
    }).superRefine((w, issues) => {
      if (!w.enabled) return;
      for (const key of ['semantic_ids_path', 'rqvae_checkpoint_path'] as const)
        if (!w[key]) issues.addIssue({ code: 'custom', path: [key], message: 'required when warm_start.enabled = true' });
    }),
  }),
  phase1: phase(2, 0.85, 0.1, 0.05),
  phase2: phase(3, 0.1, 0.45, 0.45),
  general_mix: table({
    ratio: z.number().min(0).lt(1).default(0.15),
    sources: z.array(z.string().min(1)).default(['SlimOrca', 'OpenHermes']),
    max_rows_per_source: positive().default(60000),
    cache_dir: z.string().default(''),
    seed: z.int().default(42),
  }),
  eval: table({
    english_eval_dataset: z.string().min(1).default('wikitext2'),
    eval_every_steps: positive().default(500),
    eval_max_samples: positive().default(512),
    eval_batch_size: positive().default(2),
  }),
  wandb: table({
    enabled: z.boolean().default(false),
    mode: z.enum(['offline', 'online']).default('offline'),
    project: z.string().default(''),
    entity: z.string().default(''),
    api_key: z.string().default(''),
    run_name: z.string().default(''),
    group: z.string().default(''),
    tags: z.array(z.string()).default([]),
    project_env: z.string().default('WANDB_PROJECT'),
    entity_env: z.string().default('WANDB_ENTITY'),
    api_key_env: z.string().default('WANDB_API_KEY'),
  }),
});

export type TrainConfig = z.output<typeof trainSchema>;

/** The validated `[train]` section; every path is resolved against the config file's folder (empty stays unset). */
export function loadTrainConfig(file: string): TrainConfig {
  const toml = readToml(file);
  const config = parseSection(toml, 'train', trainSchema);
  const resolve = resolveFrom(toml.dir);
  const { tokens, general_mix } = config;
  return {
    ...config,
    train_jsonl: resolve(config.train_jsonl),
    out_dir: resolve(config.out_dir),
    env_file: resolve(config.env_file),
    resume_from: resolve(config.resume_from),
    tokens: {
      ...tokens,
      semantic_vocab_path: resolve(tokens.semantic_vocab_path),
      warm_start: {
        ...tokens.warm_start,
        semantic_ids_path: resolve(tokens.warm_start.semantic_ids_path),
        rqvae_checkpoint_path: resolve(tokens.warm_start.rqvae_checkpoint_path),
      },
    },
    general_mix: { ...general_mix, cache_dir: resolve(general_mix.cache_dir) },
  };
}
