import { z } from 'zod';
import { KeyedRandom } from '../../engine/random.ts';
import { numberOption } from './options.ts';
import type { HeldOutExample, WatchPair } from './types.ts';
import type { TaskRow } from './prep-row.ts';

/**
 * Held-out users: which users the validation and test files take, and what counts as one of their
 * examples reaching the training file. Every node that asks (the held-out examples, the pool
 * filters, the leakage audit) gets the same answer from these functions.
 */

export type HoldoutSplit = 'valid' | 'test';

export interface HoldoutFractions {
  holdout_valid: number;
  holdout_test: number;
}

/** The options of every node that needs the split; prep.yaml sets them from its two parameters. */
export const holdoutOptions = {
  holdout_valid: numberOption('share of users held out for validation (llm_prep_valid.jsonl); 0: none').default(0.02),
  holdout_test: numberOption('share of users held out for testing (llm_prep_test.jsonl); 0: none').default(0.02),
};

/** A node's options with holdoutOptions, checked together: the two shares cannot take more than every user. */
export function withHoldoutSum<S extends z.ZodType<HoldoutFractions>>(options: S): S {
  return options.superRefine(({ holdout_valid: valid, holdout_test: test }, issues) => {
    // A share above 1 on its own is already reported as such.
    if (valid <= 1 && test <= 1 && valid + test > 1)
      issues.addIssue({
        code: 'custom',
        path: ['holdout_valid'],
        message: `holdout_valid + holdout_test must be at most 1, got ${valid} + ${test}`,
      });
  });
}

/**
 * The hash's fixed node name and purpose: not the asking node's id (ctx.keyed), so that every
 * node, whatever its id, puts a user in the same split.
 */
const SPLIT_NODE = 'prep-holdout';
const SPLIT_PURPOSE = 'split';

/**
 * A user's split, a pure function of (seed, user_id): u = keyed hash in [0, 1); valid when
 * u < holdout_valid, test when u < holdout_valid + holdout_test, else training. Batching, order
 * and the number of threads cannot change it.
 */
export class HoldoutSplitter {
  private readonly keyed: KeyedRandom;
  private readonly valid: number;
  private readonly both: number;

  constructor(seed: number, fractions: HoldoutFractions) {
    this.keyed = new KeyedRandom(seed, SPLIT_NODE);
    this.valid = fractions.holdout_valid;
    this.both = fractions.holdout_valid + fractions.holdout_test;
  }

  /** Whether any user is held out: with both shares 0 the nodes pass everything on untouched. */
  get active(): boolean {
    return this.both > 0;
  }

  splitOf(userId: number): HoldoutSplit | null {
    if (!this.active) return null;
    const u = this.keyed.uniform(userId, SPLIT_PURPOSE);
    return u < this.valid ? 'valid' : u < this.both ? 'test' : null;
  }
}

/** A pair as one comparable string. */
const pairKey = ({ history, target }: WatchPair): string => `${target}:${history.join(',')}`;

/** A made Task B row's pair, from its anime_ids and meta.mask_index; undefined for any other row. */
export function pairOfRow(row: Pick<TaskRow, 'task' | 'anime_ids' | 'meta'>): WatchPair | undefined {
  const index = row.meta.mask_index;
  if (row.task !== 'B' || !Number.isInteger(index)) return undefined;
  const at = index as number;
  if (at < 0 || at >= row.anime_ids.length) return undefined;
  return { history: row.anime_ids.filter((_, i) => i !== at), target: row.anime_ids[at]! };
}

/** The held-out examples by their (history, target), to find the one a training row repeats. */
export class HeldOutPairs {
  private readonly byKey = new Map<string, HeldOutExample>();
  /**
   * Each target's history lengths: most rows differ from every example in one of the two, and
   * are told apart without making a key of their whole history.
   */
  private readonly lengths = new Map<number, Set<number>>();

  constructor(examples: Iterable<HeldOutExample>) {
    for (const example of examples) {
      const pair = { history: example.history, target: example.target_anime_id };
      this.byKey.set(pairKey(pair), example);
      let lengths = this.lengths.get(pair.target);
      if (!lengths) this.lengths.set(pair.target, (lengths = new Set()));
      lengths.add(pair.history.length);
    }
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The held-out example whose (history, target) is `pair`, if one is. */
  find(pair: WatchPair | undefined): HeldOutExample | undefined {
    if (!pair || !this.lengths.get(pair.target)?.has(pair.history.length)) return undefined;
    return this.byKey.get(pairKey(pair));
  }
}
