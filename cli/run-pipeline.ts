import { InterruptedError } from '../engine/errors.ts';
import { createReporter, type LogFormat } from '../engine/progress.ts';
import { runPlan, type RunResult } from '../engine/runtime.ts';
import type { ParamOverride } from '../engine/params.ts';
import { loadPlan, type Plan } from '../engine/validate.ts';
import { builtins } from './builtin-nodes.ts';

export interface DisplayOptions {
  quiet?: boolean;
  logFormat?: LogFormat;
  /** auto: bars on a terminal, log lines elsewhere. */
  progress?: 'auto' | 'bars' | 'lines';
}

/** What a pipeline file is read with besides the file: parameter values and the engine's batch size. */
export interface PlanInputs {
  overrides?: Readonly<Record<string, ParamOverride>>;
  batchSize?: number;
}

/** Reads and validates a pipeline against the built-in nodes (and any user module it names). */
export const loadBuiltinPlan = (file: string, inputs: PlanInputs = {}): Promise<Plan> =>
  loadPlan(file, { registry: builtins, ...inputs });

/** Runs a plan with progress on stderr, stopping cleanly on Ctrl-C, SIGTERM or SIGUSR1. */
export async function runWithSignals(
  plan: Plan,
  display: DisplayOptions,
  config?: Record<string, unknown>,
): Promise<RunResult> {
  const useBars =
    display.progress === 'bars' ||
    (display.progress !== 'lines' && process.stderr.isTTY && display.logFormat !== 'json');
  const reporter = createReporter({
    mode: display.quiet ? 'quiet' : useBars ? 'tty' : 'lines',
    format: display.logFormat ?? 'text',
  });
  const controller = new AbortController();
  const stop = new AbortController();
  const onInterrupt = (signal: NodeJS.Signals) => controller.abort(new InterruptedError(signal));
  // SIGTERM and SIGUSR1 are what schedulers send before a kill: a graceful stop first (a train run
  // checkpoints and exits 75); a second SIGTERM stops at once.
  const onStop = (signal: NodeJS.Signals) =>
    stop.signal.aborted ? onInterrupt(signal) : stop.abort(new InterruptedError(signal));
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onStop);
  process.on('SIGUSR1', onStop);
  try {
    return await runPlan(plan, {
      reporter,
      signal: controller.signal,
      stopSignal: stop.signal,
      ...(config ? { config } : {}),
    });
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onStop);
    process.off('SIGUSR1', onStop);
  }
}

export async function runPipelineFile(file: string, inputs: PlanInputs, display: DisplayOptions): Promise<RunResult> {
  const plan = await loadBuiltinPlan(file, inputs);
  const result = await runWithSignals(plan, display);
  if (!display.quiet) {
    const written = result.outputs.length ? `; wrote ${result.outputs.join(', ')}` : '';
    process.stderr.write(`${plan.spec.name}: done in ${result.seconds.toFixed(1)}s${written}\n`);
  }
  return result;
}
