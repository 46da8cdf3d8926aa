import type { Counter, Progress } from '../../engine/progress.ts';
import type { Stats } from '../../engine/node.ts';
import type { WorkerEvent } from './worker-process.ts';

const n = (x: unknown, digits = 0) =>
  typeof x === 'number'
    ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '?';
const sci = (x: unknown) => (typeof x === 'number' ? x.toExponential(2) : '?');

/**
 * Turns worker events into the run's progress: a steps counter (a bar on a terminal), a log line
 * every few steps with loss, learning rate and throughput, held-out eval, English perplexity (beside
 * the base model's) and checkpoint lines. The stats keep what a summary wants: first and last loss,
 * eval losses, the latest English perplexity, throughput.
 */
export class TrainingDisplay {
  private counter: Counter | undefined;
  private readonly evals: { phase: unknown; step: unknown; eval_loss: unknown }[] = [];
  private englishBefore: unknown;

  /** Each rank's latest tokens/s; rank 0's comes with its step events. */
  private readonly rankRates = new Map<number, number>();

  constructor(
    private readonly progress: Progress,
    private readonly stats: Stats,
    private readonly logEverySteps: number,
    private readonly world = 1,
  ) {}

  /** An event of a rank other than 0: its throughput counts in the total, its warnings are shown. */
  onRankEvent(rank: number, event: WorkerEvent): void {
    if (event.event === 'step' && typeof event.tokens_per_s === 'number') this.rankRates.set(rank, event.tokens_per_s);
    else if (event.event === 'log' && event.level === 'warning')
      this.progress.warn(`rank ${rank}: ${String(event.message)}`);
  }

  startPhase(name: string, totalSteps: number): void {
    this.counter = this.progress.counter('steps', { unit: 'steps', total: totalSteps });
    this.stats.phase = name;
    this.stats.total_steps = totalSteps;
  }

  finishPhase(): void {
    this.counter?.done();
  }

  onEvent(event: WorkerEvent): void {
    switch (event.event) {
      case 'step':
        return this.step(event);
      case 'eval':
        return this.evalLine(event);
      case 'checkpoint':
        return this.progress.log(`checkpoint ${event.path}`);
      case 'runtime':
        // The worker prints the runtime table itself (forwarded as log lines); keep it for the stats.
        this.stats.runtime = { ...event, event: undefined };
        return;
      case 'log':
        return event.level === 'warning' || event.level === 'error'
          ? this.progress.warn(String(event.message))
          : this.progress.log(String(event.message));
      default:
        return;
    }
  }

  private evalLine(event: WorkerEvent): void {
    if (event.set === 'english') {
      this.englishBefore ??= event.perplexity;
      this.stats.english_perplexity = event.perplexity;
      return this.progress.log(
        `${event.phase} English perplexity at step ${event.step}: ${n(event.perplexity, 2)} ` +
          `(before training ${n(this.englishBefore, 2)}; loss ${n(event.eval_loss, 4)} over ${n(event.tokens)} tokens)`,
      );
    }
    this.evals.push({ phase: event.phase, step: event.step, eval_loss: event.eval_loss });
    this.stats.evals = this.evals;
    this.progress.log(
      `${event.phase} eval at step ${event.step}: held-out loss ${n(event.eval_loss, 4)}, ` +
        `perplexity ${n(event.perplexity, 2)} over ${n(event.tokens)} tokens`,
    );
  }

  private step(event: WorkerEvent): void {
    this.counter?.add(1);
    const step = Number(event.step);
    this.stats.steps = step;
    this.stats.first_loss ??= event.loss;
    this.stats.last_loss = event.loss;
    if (typeof event.tokens_per_s === 'number') this.rankRates.set(0, event.tokens_per_s);
    const total = [...this.rankRates.values()].reduce((a, b) => a + b, 0);
    this.stats.tokens_per_s = total;
    if (this.world > 1) this.stats.rank_tokens_per_s = Object.fromEntries(this.rankRates);
    const rate =
      this.world > 1
        ? `${n(total)} tokens/s over ${this.world} ranks (rank 0: ${n(event.tokens_per_s)})`
        : `${n(event.tokens_per_s)} tokens/s`;
    if (step === 1 || step % this.logEverySteps === 0 || step === event.total_steps)
      this.progress.log(
        `${event.phase} step ${step}/${event.total_steps}: loss ${n(event.loss, 4)}, lr ${sci(event.lr)}, ` +
          `${rate}, ${n(event.step_time_s, 2)}s/step, waited ${n(event.pipe_wait_s, 2)}s for batches`,
      );
  }
}
