import { z } from 'zod';
import { defineSource } from '../../../engine/node.ts';
import { fromGenerator } from '../../../engine/stream.ts';
import { probe } from './probe.ts';

/** Emits {n, key} rows 0..count-1 as fast as it is pulled, recording how far it got ahead. */
export default defineSource({
  type: 'count-source',
  kind: 'source',
  description: 'test source: counts up',
  options: z.strictObject({
    count: z.int().nonnegative(),
  }),
  create(ctx) {
    const { count } = ctx.options;
    const batch_size = ctx.pipeline.batchSize;
    ctx.onClose(() => void probe.closed.push(ctx.id));
    return fromGenerator(function* () {
      for (let start = 0; start < count; start += batch_size) {
        const batch = [];
        for (let n = start; n < Math.min(count, start + batch_size); n++) batch.push({ n, key: `k${n}` });
        probe.produced += batch.length;
        probe.maxInFlight = Math.max(probe.maxInFlight, probe.produced - probe.consumed);
        yield batch;
      }
    });
  },
});
