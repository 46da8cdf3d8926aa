import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { paramDefaults, parseSection, readToml, resolveFrom } from './toml.ts';

/** The graph `animind run --phase eval` runs: the same file as `animind pipeline run pipelines/eval.yaml`. */
export const EVAL_PIPELINE = fileURLToPath(new URL('../pipelines/eval.yaml', import.meta.url));

/** eval.yaml parameter <- `[eval]` key. */
export const EVAL_PARAMS: Readonly<Record<string, string>> = {
  prep_dir: 'prep_dir',
  split: 'split',
  run_dir: 'run_dir',
  model_name: 'model_name',
  semantic_ids: 'semantic_ids_path',
  out_dir: 'out_dir',
  seed: 'seed',
  top_k: 'top_k',
  k_values: 'k_values',
  beam_size: 'beam_size',
  exclude_history: 'exclude_history',
  batch_size: 'batch_size',
  device: 'device',
  precision: 'precision',
  max_users: 'max_users',
  sasrec: 'sasrec',
  sasrec_epochs: 'sasrec_epochs',
};

/**
 * `[eval]`, this project's own section. Every key sets a parameter of pipelines/eval.yaml and a key
 * left out takes that parameter's default (filled in from the file); the paths are required.
 */
export const evalSchema = z.strictObject({
  prep_dir: z.string().min(1),
  run_dir: z.string().min(1),
  semantic_ids_path: z.string().min(1),
  out_dir: z.string().min(1),
  split: z.enum(['test', 'valid']),
  model_name: z.string().min(1),
  seed: z.int(),
  top_k: z.int().min(1),
  k_values: z.array(z.int().min(1)).min(1),
  beam_size: z.union([z.int().min(1), z.literal('auto')]),
  exclude_history: z.boolean(),
  batch_size: z.int().min(1),
  device: z.string().regex(/^(auto|cpu|cuda|cuda:\d+)$/, 'expected auto, cpu, cuda or cuda:N'),
  precision: z.enum(['auto', 'fp32', 'bf16']),
  max_users: z.int().min(0),
  sasrec: z.boolean(),
  sasrec_epochs: z.int().min(1),
});

export type EvalConfig = z.output<typeof evalSchema>;

/** The validated `[eval]` section, left-out keys filled from eval.yaml, paths resolved against the config's folder. */
export function loadEvalConfig(file: string): EvalConfig {
  const toml = readToml(file);
  const config = parseSection(toml, 'eval', evalSchema, paramDefaults(EVAL_PIPELINE, EVAL_PARAMS));
  const resolve = resolveFrom(toml.dir);
  return {
    ...config,
    prep_dir: resolve(config.prep_dir),
    run_dir: resolve(config.run_dir),
    semantic_ids_path: resolve(config.semantic_ids_path),
    out_dir: resolve(config.out_dir),
  };
}
