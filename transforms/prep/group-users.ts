import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineTransform, port } from '../../engine/node.ts';
import { _ } from '../../engine/stream.ts';
import type { UserRecord, WatchRow } from './types.ts';
import { badUserId } from './user-history.ts';

/** Why a row cannot start the next user: a user_id prep cannot carry (badUserId), or one out of order. */
function rowProblem(row: WatchRow, current: UserRecord | undefined): DataError | undefined {
  if (!Number.isSafeInteger(row.user_id)) return badUserId(row.user_id);
  if (current && !(row.user_id > current.user_id))
    return new DataError(
      `table 'user_anime': rows must arrive ordered by user_id, ` +
        `but user ${row.user_id} follows user ${current.user_id}`,
    );
  return undefined;
}

/**
 * Groups `user_anime` rows, which must arrive ordered by user_id, into one record per user. A
 * user may straddle batches, so the last user of a batch is held back until a later row (or
 * the end) shows it is complete; only that one user is ever buffered. A user_id that is not an
 * integer prep can carry exactly (badUserId), or one out of order, stops the run once the users
 * before it are passed on.
 */
export default defineTransform({
  type: 'prep-group-users',
  kind: 'transform',
  description: 'Groups user_anime rows (ordered by user_id) into one record per user, across batch boundaries.',
  options: z.strictObject({}),
  inputs: { in: port<WatchRow>() },
  stats: z.object({ users: z.number(), rows: z.number() }),
  create(ctx, inputs) {
    const counter = ctx.progress.counter('users', { unit: 'users', logEvery: 25000 });
    let current: UserRecord | undefined;
    let users = 0;
    let rows = 0;
    const finish = (out: UserRecord[], user: UserRecord) => {
      out.push(user);
      users++;
    };
    return inputs.ports.in.consume<UserRecord[]>((error, batch, push, next) => {
      if (error) {
        push(error);
        next();
        return;
      }
      if (_.isNil(batch)) {
        const out: UserRecord[] = [];
        if (current) finish(out, current);
        current = undefined;
        counter.add(out.length);
        counter.done();
        Object.assign(ctx.stats, { users, rows });
        ctx.progress.log(
          `Scanned ${rows.toLocaleString('en-US')} user_anime rows from ${users.toLocaleString('en-US')} users`,
        );
        if (out.length) push(null, out);
        push(null, batch);
        return;
      }
      const out: UserRecord[] = [];
      for (const row of batch) {
        if (current && row.user_id === current.user_id) {
          current.rows.push(row);
          continue;
        }
        const problem = rowProblem(row, current);
        if (current) finish(out, current);
        if (problem) {
          if (out.length) push(null, out);
          push(problem);
          push(null, _.nil);
          return;
        }
        current = { user_id: row.user_id, rows: [row] };
      }
      rows += batch.length;
      counter.add(out.length);
      Object.assign(ctx.stats, { users, rows });
      if (out.length) push(null, out);
      next();
    });
  },
});
