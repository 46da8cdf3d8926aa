import type { Progress, Reporter } from './progress.ts';
import type { Plan } from './validate.ts';

/** What a run shows while it goes: the current stage, and node log lines only until it stops. */

/**
 * A node's log lines until the run stops: after a failure or an interrupt, nodes that see their
 * input end early would report what they hold (an empty pool, a short count) as if it were the
 * result, beside the one error line that is.
 */
export function untilStopped(progress: Progress, signal: AbortSignal): Progress {
  return {
    log(message) {
      if (!signal.aborted) progress.log(message);
    },
    warn(message) {
      if (!signal.aborted) progress.warn(message);
    },
    counter: (label, options) => progress.counter(label, options),
  };
}

/** Shows the first stage that still has unfinished nodes, as `k/N name`. */
export function trackStages(plan: Plan, reporter: Reporter, signal: AbortSignal) {
  const stages = plan.spec.stages;
  const pending = new Map<string, Set<string>>(stages.map((s) => [s, new Set<string>()]));
  const finished = new Set<string>();
  for (const node of plan.nodes) if (node.spec.stage) pending.get(node.spec.stage)!.add(node.spec.id);
  let shown = -1;
  const refresh = () => {
    let current = stages.findIndex((s) => pending.get(s)!.size > 0);
    if (current === -1) current = stages.length - 1;
    if (stages.length && current !== shown) {
      for (let k = Math.max(shown + 1, 0); k <= current; k++) reporter.stage(k + 1, stages.length, stages[k]!);
      shown = current;
    }
  };
  refresh();
  return {
    done(id: string) {
      if (finished.has(id) || signal.aborted) return;
      finished.add(id);
      for (const set of pending.values()) set.delete(id);
      refresh();
    },
  };
}
