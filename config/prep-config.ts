import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { paramDefaults, parseSection, readToml, resolveFrom } from './toml.ts';

const share = () => z.number().min(0).max(1);

/** `[prep]` with the original tool's key names and defaults; the three paths have no default. */
/** The graph `animind run --phase prep` runs: the same file as `animind pipeline run pipelines/prep.yaml`. */
export const PREP_PIPELINE = fileURLToPath(new URL('../pipelines/prep.yaml', import.meta.url));

/** prep.yaml parameter <- `[prep]` key. `rebuild` has no parameter: it decides whether to run at all. */
export const PREP_PARAMS: Readonly<Record<string, string>> = {
  database: 'source_db',
  semantic_ids: 'semantic_ids_path',
  out_dir: 'out_dir',
  seed: 'seed',
  target_examples: 'target_examples',
  split_a: 'split_task_a',
  split_b: 'split_task_b',
  split_c: 'split_task_c',
  max_task_a_templates_per_anime: 'max_task_a_templates_per_anime',
  task_b_min_history: 'task_b_min_history',
  task_b_max_history: 'task_b_max_history',
  task_b_mask_modes: 'task_b_mask_modes',
  task_b_positive_score_min: 'task_b_positive_score_min',
  task_b_allowed_statuses: 'task_b_allowed_statuses',
  holdout_valid: 'holdout_valid',
  holdout_test: 'holdout_test',
  export_parquet: 'export_parquet',
  write_manifest: 'write_manifest',
  scan_workers: 'scan_workers',
};

/**
 * `[prep]` with the original tool's key names. Every key but `rebuild` sets a parameter of
 * pipelines/prep.yaml, and a key left out takes that parameter's default (loadPrepConfig fills it
 * in from the file): one default per setting. The three paths are required.
 */
export const prepSchema = z
  .strictObject({
    source_db: z.string().min(1),
    semantic_ids_path: z.string().min(1),
    out_dir: z.string().min(1),
    rebuild: z.boolean().default(true),
    seed: z.int(),
    target_examples: z.int().min(0),
    split_task_a: share(),
    split_task_b: share(),
    split_task_c: share(),
    max_task_a_templates_per_anime: z.int().min(0),
    task_b_min_history: z.int().min(0),
    task_b_max_history: z.int().min(1),
    task_b_mask_modes: z.array(z.enum(['last', 'random'])).min(1),
    task_b_positive_score_min: z.int().min(0),
    task_b_allowed_statuses: z.array(z.int()).min(1),
    // Not the original tool's: prep.yaml's held-out users for evaluation (0 and 0: none).
    holdout_valid: share(),
    holdout_test: share(),
    export_parquet: z.boolean(),
    write_manifest: z.boolean(),
    // Not the original tool's: prep.yaml's scan_workers, for a machine with more cores.
    scan_workers: z.union([z.literal('auto'), z.int().min(0)], {
      error: 'expected a whole number of threads, or "auto"',
    }),
  })
  .superRefine((c, issues) => {
    const sum = c.split_task_a + c.split_task_b + c.split_task_c;
    if (Math.abs(sum - 1) > 1e-6)
      issues.addIssue({
        code: 'custom',
        path: ['split_task_a'],
        message:
          `split_task_a + split_task_b + split_task_c must sum to 1 (±1e-6), got ` +
          `${c.split_task_a} + ${c.split_task_b} + ${c.split_task_c} = ${Number(sum.toFixed(9))}`,
      });
  });

export type PrepConfig = z.output<typeof prepSchema>;

/**
 * The validated `[prep]` section, left-out keys filled from prep.yaml, paths resolved against the config file's folder.
 */
export function loadPrepConfig(file: string): PrepConfig {
  const toml = readToml(file);
  const config = parseSection(toml, 'prep', prepSchema, paramDefaults(PREP_PIPELINE, PREP_PARAMS));
  const resolve = resolveFrom(toml.dir);
  return {
    ...config,
    source_db: resolve(config.source_db),
    semantic_ids_path: resolve(config.semantic_ids_path),
    out_dir: resolve(config.out_dir),
  };
}
