import type { Task } from './prep-row.ts';

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

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
