import { z } from 'zod';
import { defineSink, port } from '../../../engine/node.ts';
import { _ } from '../../../engine/stream.ts';
import { probe } from './probe.ts';

/** Consumes one batch per timer tick: a sink much slower than its source. */
export default defineSink({
  type: 'slow-sink',
  kind: 'sink',
  description: 'test sink: slow consumer',
  options: z.strictObject({ fail_after: z.int().optional() }),
  inputs: { in: port() },
  create(ctx, inputs) {
    return new Promise((resolve, reject) => {
      const pull = () =>
        inputs.ports.in.pull((error, batch) => {
          if (error) return reject(error);
          if (_.isNil(batch)) return resolve();
          probe.consumed += batch.length;
          if (ctx.options.fail_after !== undefined && probe.consumed >= ctx.options.fail_after)
            return reject(new Error(`sink gave up after ${probe.consumed} rows`));
          setImmediate(pull);
        });
      pull();
    });
  },
});
