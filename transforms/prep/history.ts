import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import { intListOption, intOption } from './options.ts';
import { atEnd, withCatalog } from './streams.ts';
import type { CatalogEntry, UserHistory, UserRecord } from './types.ts';
import { userHistory, type HistoryCounts, type HistoryOptions } from './user-history.ts';

/** The options prep-history shares with the fast user pass (prep-user-histories). */
export const historyOptions = {
  task_b_allowed_statuses: intListOption(
    'watching_status values kept (1 watching, 2 completed, 3 on hold, 4 dropped, 6 plan to watch)',
    [1, 2, 3, 4, 6],
  ),
  task_b_min_history: intOption('users with fewer kept rows get no Task B rows; at most task_b_max_history').default(4),
  task_b_max_history: intOption('keep only the last N rows of a history', 1).default(30),
};

/**
 * A node's options with historyOptions, checked together: task_b_min_history above
 * task_b_max_history is an option error, since a kept history is cut to the last max rows.
 */
export function withHistoryBounds<S extends z.ZodType<{ task_b_min_history: number; task_b_max_history: number }>>(
  options: S,
): S {
  return options.superRefine(({ task_b_min_history: min, task_b_max_history: max }, issues) => {
    if (min > max)
      issues.addIssue({
        code: 'custom',
        path: ['task_b_min_history'],
        message:
          `task_b_min_history (${min}) must not be above ` +
          `task_b_max_history (${max}), the most rows a history keeps`,
      });
  });
}

/** What the user pass counts; prep-user-histories counts the same, and the rows it read. */
export const historyStats = z.object({
  users: z.number(),
  unknown_anime_rows: z.number(),
  status_filtered_rows: z.number(),
  short_history_users: z.number(),
  eligible_users: z.number(),
});

/** Per-user filtered, sorted and truncated watch histories (Task B steps 1–3). */
export default defineTransform({
  type: 'prep-history',
  kind: 'transform',
  description:
    'Filters each user’s rows by status and semantic id, then sorts and keeps the last N (Task B steps 1-3).',
  options: withHistoryBounds(z.strictObject(historyOptions)),
  inputs: { users: port<UserRecord>(), catalog: port<CatalogEntry>({ side: true }) },
  stats: historyStats,
  create(ctx, inputs) {
    const o = ctx.options;
    const options: HistoryOptions = {
      allowed: new Set(o.task_b_allowed_statuses),
      min: o.task_b_min_history,
      max: o.task_b_max_history,
    };
    const counts: HistoryCounts = { unknown_anime_rows: 0, status_filtered_rows: 0 };
    let users = 0;
    let short = 0;
    Object.assign(ctx.stats, counts, { users, short_history_users: short, eligible_users: 0 });
    const rows = withCatalog<UserRecord, UserHistory>(inputs.ports.catalog, inputs.ports.users, (known) => (batch) => {
      const out: UserHistory[] = [];
      for (const user of batch) {
        const history = userHistory(user, known, options, counts);
        if (!history.eligible) short++;
        if (history.rows.length) out.push(history);
      }
      users += batch.length;
      Object.assign(ctx.stats, counts, { users, short_history_users: short, eligible_users: users - short });
      return out;
    });
    return atEnd(rows, () => ctx.progress.log(historyLine(users - short, short, counts.unknown_anime_rows)));
  },
});

/** The log line both user passes end with. */
export const historyLine = (eligible: number, short: number, unknown: number) =>
  `Users with a Task B history: ${eligible.toLocaleString('en-US')}; ` +
  `too short: ${short.toLocaleString('en-US')}; ` +
  `rows of anime without a semantic id: ${unknown.toLocaleString('en-US')}`;
