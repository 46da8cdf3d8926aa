import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineTransform, port } from '../../engine/node.ts';
import { collectRows } from '../../engine/stream.ts';
import { HeldOutPairs, holdoutOptions, HoldoutSplitter, pairOfRow, withHoldoutSum } from './holdout.ts';
import { atEnd, withReady } from './streams.ts';
import { PREP_ROW_COLUMNS, type PrepRow } from './prep-row.ts';
import type { HeldOutExample } from './types.ts';

export const auditStats = z.object({
  /** Training rows read. */
  rows: z.number(),
  /** Rows whose user_id is a held-out user. */
  rows_with_held_out_user: z.number(),
  /** Task B rows whose (unmasked anime, masked anime) is a held-out example's (history, target). */
  rows_with_held_out_pair: z.number(),
  /** Rows with either (a row with both counts once). */
  total: z.number(),
});

/**
 * Counts the training rows that carry a held-out user or a held-out example's (history, target)
 * pair (see WatchPair), and remembers the first, so a failed audit can name it.
 */
export class LeakageAudit {
  readonly counts = { rows: 0, rows_with_held_out_user: 0, rows_with_held_out_pair: 0, total: 0 };
  private first: string | undefined;
  private readonly pairs: HeldOutPairs;

  constructor(
    private readonly splitter: HoldoutSplitter,
    heldOut: Iterable<HeldOutExample>,
  ) {
    this.pairs = new HeldOutPairs(heldOut);
  }

  /** Whether any held-out example was given. */
  get holdsPairs(): boolean {
    return this.pairs.size > 0;
  }

  check(row: PrepRow): void {
    this.counts.rows++;
    const split = row.user_id === null ? null : this.splitter.splitOf(row.user_id);
    const example = this.pairs.size ? this.pairs.find(pairOfRow(row)) : undefined;
    if (split) this.counts.rows_with_held_out_user++;
    if (example) this.counts.rows_with_held_out_pair++;
    if (!split && !example) return;
    this.counts.total++;
    this.first ??=
      `${row.example_id} (` +
      (split
        ? `user ${row.user_id}, held out for ${split}`
        : `the (history, target) of held-out user ${example!.user_id}'s example`) +
      ')';
  }

  /** The error that fails the run when any row leaked: one line, the count and the first row. */
  failure(): DataError | undefined {
    const { total } = this.counts;
    if (total === 0) return undefined;
    return new DataError(
      `leakage audit: ${total.toLocaleString('en-US')} training row${total === 1 ? '' : 's'} ` +
        `carr${total === 1 ? 'ies' : 'y'} a held-out user or a held-out (history, target) pair; ` +
        `the first is ${this.first}`,
    );
  }
}

/**
 * Passes the training rows on unchanged while auditing them against the held-out users and their
 * examples; at the end, a row that leaked fails the run, so no output is published.
 */
export default defineTransform({
  type: 'prep-leakage-audit',
  kind: 'transform',
  description:
    'Checks that no training row carries a held-out user or a held-out (history, target) pair; ' +
    'fails the run if one does.',
  options: withHoldoutSum(z.strictObject(holdoutOptions)),
  inputs: {
    in: port<PrepRow>(),
    valid: port<HeldOutExample>({ side: true }),
    test: port<HeldOutExample>({ side: true }),
  },
  // The rows go on as they came (with their encoded lines), so the Parquet sink still finds their columns.
  columns: PREP_ROW_COLUMNS,
  stats: auditStats,
  create(ctx, inputs) {
    const splitter = new HoldoutSplitter(ctx.pipeline.seed, ctx.options);
    let audit: LeakageAudit | undefined;
    Object.assign(ctx.stats, { rows: 0, rows_with_held_out_user: 0, rows_with_held_out_pair: 0, total: 0 });
    const ready = Promise.all([collectRows(inputs.ports.valid), collectRows(inputs.ports.test)]).then(
      ([valid, test]) => {
        audit = new LeakageAudit(splitter, [...valid, ...test]);
        // Nothing held out (both shares 0): no row can leak, so the rows are only counted.
        return { audit, check: splitter.active || audit.holdsPairs };
      },
    );
    // The rows are pulled at once, not after the examples: both come from the user pass. By the
    // time a row comes, the examples are in.
    const rows = withReady(ready, inputs.ports.in, ({ audit: held, check }, batch: PrepRow[]) => {
      if (check) for (const row of batch) held.check(row);
      else held.counts.rows += batch.length;
      Object.assign(ctx.stats, held.counts);
      return batch;
    });
    return atEnd(rows, () => {
      const failure = audit?.failure();
      if (failure) throw failure;
    });
  },
});
