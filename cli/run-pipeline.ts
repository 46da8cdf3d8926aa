import { InterruptedError } from '../engine/errors.ts';
import { createReporter, type LogFormat } from '../engine/progress.ts';
import { runPlan, type RunResult } from '../engine/runtime.ts';
import { loadPlan, type Plan } from '../engine/validate.ts';

export interface DisplayOptions {
  quiet?: boolean;
  logFormat?: LogFormat;
  /** auto: bars on a terminal, log lines elsewhere. */
  progress?: 'auto' | 'bars' | 'lines';
}

/** Runs a plan with progress on stderr, stopping cleanly on Ctrl-C or SIGTERM. */
export async function runWithSignals(plan: Plan, display: DisplayOptions): Promise<RunResult> {
  const useBars = display.progress === 'bars' || (display.progress !== 'lines' && process.stderr.isTTY && display.logFormat !== 'json');
  const reporter = createReporter({
    mode: display.quiet ? 'quiet' : useBars ? 'tty' : 'lines',
    format: display.logFormat ?? 'text',
  });
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => controller.abort(new InterruptedError(signal));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await runPlan(plan, { reporter, signal: controller.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function runPipelineFile(file: string, overrides: Record<string, string>, display: DisplayOptions): Promise<RunResult> {
  const plan = await loadPlan(file, overrides);
  const result = await runWithSignals(plan, display);
  if (!display.quiet) {
    const written = result.outputs.length ? `; wrote ${result.outputs.join(', ')}` : '';
    process.stderr.write(`${plan.spec.name}: done in ${result.seconds.toFixed(1)}s${written}\n`);
  }
  return result;
}
