import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { defineSink, defineSource, port, type Batch, type NodeDefinition, type Stats } from './node.ts';
import { DEFAULT_BATCH_SIZE } from './pipeline-file.ts';
import { createReporter } from './progress.ts';
import { runPlan } from './runtime.ts';
import { _ } from './stream.ts';
import { portNames, type Plan, type PlannedNode } from './validate.ts';

export interface NodeRun<T> {
  rows: T[];
  batches: T[][];
  stats: Stats;
}

/**
 * Runs one transform on in-memory batches per port, in a real run of the engine (the same
 * context, stats and errors a pipeline gives it), and returns what it emitted. For testing a node
 * without a pipeline file, built-in or a user's own.
 */
export async function runTransform<T = unknown>(
  def: NodeDefinition,
  options: Record<string, unknown>,
  ports: Record<string, Batch[]>,
  { id = 'node', seed = 42, batchSize = DEFAULT_BATCH_SIZE }: { id?: string; seed?: number; batchSize?: number } = {},
): Promise<NodeRun<T>> {
  if (def.kind !== 'transform') throw new Error(`${def.type} is not a transform`);
  const collected: T[][] = [];
  const sources = Object.entries(ports).map(([name, batches]) => planned(`input:${name}`, feed(batches), {}, []));
  const names = portNames(def);
  const inputs = def.variadic
    ? sources.map((s) => ({ port: names[0]!, node: s.spec.id }))
    : Object.keys(ports).map((name) => ({ port: name, node: `input:${name}` }));
  const parsed = def.options.safeParse(options);
  if (!parsed.success)
    throw new ConfigError(
      `${def.type}: ` +
        `${parsed.error.issues.map((i: z.core.$ZodIssue) => `option '${i.path.join('.')}': ${i.message}`).join('; ')}`,
    );
  const node = planned(id, def, parsed.data as Record<string, unknown>, inputs);
  const sink = planned('collect', collect(collected), {}, [{ port: 'in', node: id }]);
  const plan: Plan = {
    spec: {
      file: '',
      dir: process.cwd(),
      name: 'test',
      seed,
      batchSize,
      stages: [],
      paramSpecs: [],
      paramSources: {},
      params: {},
      nodes: [],
      disabled: [],
    },
    nodes: [...sources, node, sink],
  };
  const result = await runPlan(plan, { reporter: createReporter({ mode: 'quiet', format: 'text' }) });
  return { rows: collected.flat(), batches: collected, stats: result.stats[id]! };
}

const planned = (
  id: string,
  def: NodeDefinition,
  options: Record<string, unknown>,
  inputs: PlannedNode['inputs'],
): PlannedNode => ({
  spec: {
    id,
    use: def.type,
    line: 0,
    from: [],
    namedFrom: false,
    options,
    optionLines: {},
    fromCommandLine: new Set(),
    optionSources: {},
  },
  def,
  options,
  inputs,
});

const feed = (batches: Batch[]) =>
  defineSource({
    type: 'batches',
    kind: 'source',
    description: 'in-memory batches',
    options: z.object({}),
    create: () => _(batches),
  });

const collect = <T>(into: T[][]) =>
  defineSink({
    type: 'collect',
    kind: 'sink',
    description: 'keeps every batch in memory',
    options: z.object({}),
    inputs: { in: port<T>() },
    async create(_ctx, inputs) {
      into.push(...(await inputs.ports.in.collect().toPromise(Promise)));
    },
  });
