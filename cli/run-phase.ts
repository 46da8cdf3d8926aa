import { loadPrepConfig, PREP_PARAMS, PREP_PIPELINE } from '../config/prep-config.ts';
import { paramOverrides, readToml } from '../config/toml.ts';
import type { ParamOverride } from '../engine/params.ts';
import { staleReason } from './prep-up-to-date.ts';
import { loadBuiltinPlan, runWithSignals, type DisplayOptions } from './run-pipeline.ts';
import { runTrainPhase } from './run-train-phase.ts';
import { EVAL_PARAMS, EVAL_PIPELINE, loadEvalConfig } from '../config/eval-config.ts';

/**
 * prep.yaml params that change speed and memory but never a byte of the outputs (the prep tests
 * hold them to that), so outputs written with other values are still up to date.
 */
const SPEED_ONLY_PARAMS = new Set(['scan_workers']);

/** `animind run --phase …`: the original tool's entry point, mapped onto the YAML pipelines. */
export async function runPhase(
  phase: 'prep' | 'train' | 'eval',
  configFile: string,
  display: DisplayOptions,
  sets: Readonly<Record<string, ParamOverride>> = {},
): Promise<number> {
  if (phase === 'train') return runTrainPhase(configFile, display, sets);
  if (phase === 'eval') return runEvalPhase(configFile, display, sets);
  return runPrepPhase(configFile, display, sets);
}

async function runPrepPhase(
  configFile: string,
  display: DisplayOptions,
  sets: Readonly<Record<string, ParamOverride>>,
): Promise<number> {
  const config = loadPrepConfig(configFile);
  // --set on the command line wins over the TOML section (one machine's node_rank, say).
  const overrides = { ...paramOverrides(readToml(configFile), 'prep', PREP_PARAMS, config), ...sets };
  const plan = await loadBuiltinPlan(PREP_PIPELINE, { overrides });
  const say = (line: string) => display.quiet || process.stderr.write(`${line}\n`);

  if (!config.rebuild) {
    const reason = await staleReason(plan, (param) => `[prep] ${PREP_PARAMS[param] ?? param}`, SPEED_ONLY_PARAMS);
    if (!reason) {
      say(
        `prep: outputs in ${config.out_dir} are up to date (same ` +
          `settings and input hashes as their manifest); nothing to do`,
      );
      return 0;
    }
    say(`prep: rebuilding although rebuild = false: ${reason}`);
  }
  // The manifest records the section as it was given, beside the params it set.
  const result = await runWithSignals(plan, display, config);
  say(`prep: done in ${result.seconds.toFixed(1)}s; wrote ${result.outputs.join(', ')}`);
  return 0;
}

/** `animind run --phase eval`: eval.yaml with its parameters set from the `[eval]` section. */
async function runEvalPhase(
  configFile: string,
  display: DisplayOptions,
  sets: Readonly<Record<string, ParamOverride>>,
): Promise<number> {
  const config = loadEvalConfig(configFile);
  const overrides = { ...paramOverrides(readToml(configFile), 'eval', EVAL_PARAMS, config), ...sets };
  const plan = await loadBuiltinPlan(EVAL_PIPELINE, { overrides });
  const result = await runWithSignals(plan, display, config);
  if (!display.quiet)
    process.stderr.write(`eval: done in ${result.seconds.toFixed(1)}s; wrote ${result.outputs.join(', ')}\n`);
  return 0;
}
