import { fileURLToPath } from 'node:url';
import { loadPrepConfig, type PrepConfig } from '../config/prep-config.ts';
import { loadTrainConfig } from '../config/train-config.ts';
import { loadPlan } from '../engine/validate.ts';
import { staleReason } from './prep-up-to-date.ts';
import { runWithSignals, type DisplayOptions } from './run-pipeline.ts';
import { runTrainPhase } from './run-train-phase.ts';

/** The graph `animind run --phase prep` runs: the same file as `animind pipeline run pipelines/prep.yaml`. */
const PREP_PIPELINE = fileURLToPath(new URL('../pipelines/prep.yaml', import.meta.url));

/** prep.yaml parameter <- `[prep]` key. `rebuild` has no parameter: it decides whether to run at all. */
const PREP_PARAMS: Record<string, Exclude<keyof PrepConfig, 'rebuild'>> = {
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
  export_parquet: 'export_parquet',
  write_manifest: 'write_manifest',
  scan_workers: 'scan_workers',
};

/**
 * prep.yaml params that change speed and memory but never a byte of the outputs (the prep tests
 * hold them to that), so outputs written with other values are still up to date.
 */
const SPEED_ONLY_PARAMS = new Set(['batch_size', 'scan_workers']);

/** The `[prep]` section as `--set` overrides of prep.yaml (lists in the comma form its options take). */
function prepOverrides(config: PrepConfig): Record<string, string> {
  return Object.fromEntries(
    Object.entries(PREP_PARAMS).map(([param, key]) => {
      const value = config[key];
      return [param, Array.isArray(value) ? value.join(',') : String(value)];
    }),
  );
}

/** `animind run --phase …`: the original tool's entry point, mapped onto the YAML pipelines. */
export async function runPhase(phase: 'prep' | 'train', configFile: string, display: DisplayOptions): Promise<number> {
  if (phase === 'train') return runTrainPhase(loadTrainConfig(configFile), display);
  return runPrepPhase(configFile, display);
}

async function runPrepPhase(configFile: string, display: DisplayOptions): Promise<number> {
  const config = loadPrepConfig(configFile);
  const plan = await loadPlan(PREP_PIPELINE, prepOverrides(config));
  const manifest = plan.nodes.find((n) => n.def.type === 'manifest-sink');
  if (manifest) manifest.options.config = config;
  const say = (line: string) => display.quiet || process.stderr.write(`${line}\n`);

  if (!config.rebuild) {
    const reason = await staleReason(plan, (param) => `[prep] ${PREP_PARAMS[param] ?? param}`, SPEED_ONLY_PARAMS);
    if (!reason) {
      say(`prep: outputs in ${config.out_dir} are up to date (same settings and input hashes as their manifest); nothing to do`);
      return 0;
    }
    say(`prep: rebuilding although rebuild = false: ${reason}`);
  }
  const result = await runWithSignals(plan, display);
  say(`prep: done in ${result.seconds.toFixed(1)}s; wrote ${result.outputs.join(', ')}`);
  return 0;
}
