import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineTransform, port } from '../../engine/node.ts';
import { _ } from '../../engine/stream.ts';
import type { UserRecord, WatchRow } from './types.ts';

/**
 * Groups `user_anime` rows, which must arrive ordered by user_id, into one record per user. A
 * user may straddle batches, so the last user of a batch is held back until a later row (or
 * the end) shows it is complete; only that one user is ever buffered.
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
        if (current && !(row.user_id > current.user_id)) {
          push(
            new DataError(
              `table 'user_anime': rows must arrive ordered by user_id, ` +
                `but user ${row.user_id} follows user ${current.user_id}`,
            ),
          );
          push(null, _.nil);
          return;
        }
        if (current) finish(out, current);
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
