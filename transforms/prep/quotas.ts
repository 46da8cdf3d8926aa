import { roundHalfEven } from '../../engine/keyed-order.ts';
import type { Task } from './prep-row.ts';

export interface Splits {
  split_a: number;
  split_b: number;
  split_c: number;
}

/** Why the splits are unusable, or undefined when they sum to 1 (±1e-6). */
export function splitsProblem(s: Splits): string | undefined {
  const sum = s.split_a + s.split_b + s.split_c;
  if (Math.abs(sum - 1) <= 1e-6) return undefined;
  return (
    `split_a + split_b + split_c must sum to 1 (±1e-6), ` +
    `got ${s.split_a} + ${s.split_b} + ${s.split_c} = ${Number(sum.toFixed(9))}`
  );
}

/** A and B rounded half-even; C takes the remainder so the quotas always add up to the target. */
export function quotas(target: number, s: Splits): Record<Task, number> {
  const a = roundHalfEven(target * s.split_a);
  const b = roundHalfEven(target * s.split_b);
  return { A: a, B: b, C: target - a - b };
}

/**
 * Heap a sampled row takes from sampling until the shuffle writes it, rounded up from what prep
 * measured on the bundled fixtures: peak RSS rose 60-110 bytes a row from 20,000 to 200,000 rows
 * and 95-140 from 200,000 to 1,000,000 (GNU time, runs vary). V8's heap limit agrees: at 176 MB
 * (--max-old-space-size=128) 1.5M rows ran and 2M died of heap exhaustion, at 304 MB 3M ran and 4M
 * died (~75 bytes a row over ~48 MB). On a generated database of 4M watch rows, whose pools exceed
 * their quotas, 2M ran and 3M died at 304 MB: a distinct pool item holds more than a repeat.
 */
export const SAMPLED_ROW_BYTES = 100;

const mb = (bytes: number) => Math.ceil(bytes / 2 ** 20).toLocaleString('en-US');

/**
 * Why a target cannot be sampled within V8's heap limit (`heap_size_limit`, in bytes), or
 * undefined when its estimate fits: a run past the limit dies of heap exhaustion after minutes
 * of work. Sizes are in MB as --max-old-space-size counts them (MiB); `machineBytes` is the RAM.
 */
export function targetMemoryProblem(target: number, heapLimit: number, machineBytes: number): string | undefined {
  const needed = target * SAMPLED_ROW_BYTES;
  if (needed <= heapLimit) return undefined;
  // Room beyond the rows for everything else the run holds (catalog, pools, batches in flight).
  const raise = Math.ceil((needed + 2 ** 29) / 2 ** 30) * 1024;
  const machine = needed > machineBytes ? ` (this machine has ${mb(machineBytes)} MB in all)` : '';
  return (
    `target_examples ${target} needs about ${mb(needed)} MB of heap (~${SAMPLED_ROW_BYTES} bytes a sampled row, ` +
    `held until the shuffle), over V8's heap limit of ${mb(heapLimit)} MB: lower target_examples, or ` +
    `raise the limit with NODE_OPTIONS=--max-old-space-size=${raise}${machine}`
  );
}
