import type { Batch, Stats, TransformNode } from '../../engine/node.ts';
import { createReporter } from '../../engine/progress.ts';
import { KeyedRandom, nodeGenerator } from '../../engine/random.ts';
import { _ } from '../../engine/stream.ts';

const quiet = createReporter({ mode: 'quiet', format: 'text' });

/** Runs one transform on in-memory batches, outside a pipeline, and returns its rows and stats. */
export async function runTransform<T>(node: TransformNode, options: Record<string, unknown>, batches: Batch[], seed = 42): Promise<{ rows: T[]; stats: Stats }> {
  const id = 'node';
  const stats: Stats = {};
  const ctx = {
    id,
    options: node.options.parse(options),
    pipeline: { name: 'test', seed, dir: process.cwd() },
    rng: (stream = '') => nodeGenerator(seed, id, stream),
    keyed: new KeyedRandom(seed, id),
    progress: quiet.forNode(id),
    signal: new AbortController().signal,
    onClose: () => {},
    stats,
    allStats: { [id]: stats },
    output: (file: string) => file,
    outputs: [],
  };
  const input = _(batches);
  const output = node.create(ctx as never, { ports: { in: input }, list: [input] });
  const produced = (await output.collect().toPromise(Promise)) as T[][];
  return { rows: produced.flat(), stats };
}
