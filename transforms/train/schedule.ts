import { uniformInt } from 'pure-rand/distribution/uniformInt';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

export interface ScheduleOptions {
  sequences: number;
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step. */
  accumulation: number;
  epochs: number;
  /** Stop after this many optimizer steps; 0 runs every epoch to the end. */
  maxSteps: number;
  /** Random order of sequences for each epoch; undefined keeps input order. */
  epochOrder?: (epoch: number) => RandomGenerator;
}

const microBatchesPerEpoch = (o: ScheduleOptions) => Math.ceil(o.sequences / o.batchSize);

/**
 * Optimizer steps in the phase, known before the first batch so the worker's learning-rate
 * schedule is right. Epochs run back to back, so one step may straddle an epoch boundary.
 */
export function totalSteps(o: ScheduleOptions): number {
  const steps = Math.ceil((o.epochs * microBatchesPerEpoch(o)) / o.accumulation);
  return o.maxSteps > 0 ? Math.min(steps, o.maxSteps) : steps;
}

function epochPermutation(o: ScheduleOptions, epoch: number): number[] {
  const order = Array.from({ length: o.sequences }, (_, i) => i);
  if (!o.epochOrder) return order;
  const rng = o.epochOrder(epoch);
  for (let i = order.length - 1; i > 0; i--) {
    const j = uniformInt(rng, 0, i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * Each optimizer step as its micro-batches, each a list of sequence indices. A pure function of
 * the options, so a resumed run can skip to step k and see exactly the batches it would have.
 */
export function* optimizerSteps(o: ScheduleOptions): Generator<number[][]> {
  const perEpoch = microBatchesPerEpoch(o);
  const steps = totalSteps(o);
  let epoch = -1;
  let order: number[] = [];
  for (let step = 0; step < steps; step++) {
    const micro: number[][] = [];
    for (let m = step * o.accumulation; m < Math.min((step + 1) * o.accumulation, o.epochs * perEpoch); m++) {
      const e = Math.floor(m / perEpoch);
      if (e !== epoch) {
        epoch = e;
        order = epochPermutation(o, e);
      }
      const start = (m % perEpoch) * o.batchSize;
      micro.push(order.slice(start, start + o.batchSize));
    }
    yield micro;
  }
}

/** Whether an eval is due after optimizer step `step` (1-based) of a phase: every `every` steps and at its end. */
export const evalDue = (step: number, totalSteps: number, every: number) =>
  step === totalSteps || (every > 0 && step % every === 0);
