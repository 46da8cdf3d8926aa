import { z } from 'zod';
import { parseSection, readToml, resolveFrom } from './toml.ts';

const share = () => z.number().min(0).max(1);

/** `[prep]` with the original tool's key names and defaults; the three paths have no default. */
export const prepSchema = z
  .strictObject({
    source_db: z.string().min(1),
    semantic_ids_path: z.string().min(1),
    out_dir: z.string().min(1),
    rebuild: z.boolean().default(true),
    seed: z.int().default(42),
    target_examples: z.int().min(0).default(400000),
    split_task_a: share().default(0.5),
    split_task_b: share().default(0.25),
    split_task_c: share().default(0.25),
    max_task_a_templates_per_anime: z.int().min(0).default(12),
    task_b_min_history: z.int().min(0).default(4),
    task_b_max_history: z.int().min(1).default(30),
    task_b_mask_modes: z.array(z.enum(['last', 'random'])).min(1).default(['last', 'random']),
    task_b_positive_score_min: z.int().min(0).default(7),
    task_b_allowed_statuses: z.array(z.int()).min(1).default([1, 2, 3, 4, 6]),
    export_parquet: z.boolean().default(false),
    write_manifest: z.boolean().default(true),
    // Not the original tool's: prep.yaml's scan_workers, for a machine with more cores.
    scan_workers: z.union([z.literal('auto'), z.int().min(0)], { error: 'expected a whole number of threads, or "auto"' }).default('auto'),
  })
  .superRefine((c, issues) => {
    const sum = c.split_task_a + c.split_task_b + c.split_task_c;
    if (Math.abs(sum - 1) > 1e-6)
      issues.addIssue({
        code: 'custom',
        path: ['split_task_a'],
        message: `split_task_a + split_task_b + split_task_c must sum to 1 (±1e-6), got ${c.split_task_a} + ${c.split_task_b} + ${c.split_task_c} = ${Number(sum.toFixed(9))}`,
      });
  });

export type PrepConfig = z.output<typeof prepSchema>;

/** The validated `[prep]` section, with its paths resolved against the config file's folder. */
export function loadPrepConfig(file: string): PrepConfig {
  const toml = readToml(file);
  const config = parseSection(toml, 'prep', prepSchema);
  const resolve = resolveFrom(toml.dir);
  return {
    ...config,
    source_db: resolve(config.source_db),
    semantic_ids_path: resolve(config.semantic_ids_path),
    out_dir: resolve(config.out_dir),
  };
}
