import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { fillByPasses, keyedOrder, roundHalfEven } from '../../engine/keyed-order.ts';
import { defineTransform, port, type NodeContext } from '../../engine/node.ts';
import { KeyedRandom } from '../../engine/random.ts';
import { fromAsync, type Stream } from '../../engine/stream.ts';
import { int, num } from './option-types.ts';
import type { TokenizedExample } from './types.ts';

const TASKS = ['A', 'B', 'C'] as const;
type Task = (typeof TASKS)[number];

// No defaults: the weights are what tells one phase from another (train.yaml sets each phase's).
const weight = (task: Task) => num().min(0).describe(`relative share of Task ${task} rows in the phase's domain rows`);

const options = z
  .strictObject({
    phase: z.string().min(1).default('phase').describe('phase name, for the log'),
    weight_task_a: weight('A'),
    weight_task_b: weight('B'),
    weight_task_c: weight('C'),
    max_domain_rows: int().nonnegative().default(0).describe('domain rows in the phase; 0: as many as the input has'),
    general_ratio: num()
      .min(0)
      .lt(1)
      .default(0.15)
      .describe('share of general instruction rows in the phase (they are added to the domain rows)'),
    general_seed: z
      .union([int(), z.literal('auto')])
      .default('auto')
      .describe("seed of the general rows' draw; auto: the run's seed"),
  })
  .refine((o) => o.weight_task_a + o.weight_task_b + o.weight_task_c > 0, {
    message: 'weight_task_a + weight_task_b + weight_task_c must be above 0',
    path: ['weight_task_a'],
  });

type Options = z.output<typeof options>;

const counts = z.record(z.string(), z.number());

const mixStats = z.object({
  pools: counts.describe('domain examples in the input, by task, and general examples by source'),
  quotas: counts.describe('examples the phase takes, by task, and general'),
  passes: counts.describe('passes over each pool (above 1: the pool was repeated)'),
  rows: z.number().describe('examples emitted'),
});

type Context = NodeContext<Options, typeof mixStats>;

const repeat = (example: TokenizedExample, pass: number): TokenizedExample => ({
  ...example,
  key: `${example.key}#${pass}`,
});

/**
 * One training phase's examples: the domain rows sampled by the phase's A/B/C weights, general
 * instruction rows added so they are `general_ratio` of the phase, all in one keyed shuffle.
 * A quota larger than its pool repeats the pool in keyed passes (keys `<key>#<pass>`), as prep
 * does; a quota within it is a keyed sample. The result depends on the seed and the rows, never
 * on their order or batching.
 */
export default defineTransform({
  type: 'phase-mix',
  kind: 'transform',
  description:
    "Samples a phase's domain examples by task weights, adds general instruction examples " +
    'to the given ratio, and shuffles them (keyed, deterministic).',
  options,
  inputs: { domain: port<TokenizedExample>(), general: port<TokenizedExample>() },
  stats: mixStats,
  create(ctx, inputs) {
    const domain = collect(inputs.ports.domain);
    const general = collect(inputs.ports.general);
    async function* batches() {
      const [d, g] = await Promise.all([domain, general]);
      yield* mix(ctx, d, g);
    }
    return fromAsync(batches(), (fn) => ctx.onClose(fn));
  },
});

function collect(input: Stream<TokenizedExample[]>): Promise<TokenizedExample[]> {
  return new Promise((resolve, reject) => {
    const all: TokenizedExample[] = [];
    input
      .stopOnError(reject)
      .each((batch) => void all.push(...batch))
      .done(() => resolve(all));
  });
}

function mix(ctx: Context, domain: TokenizedExample[], general: TokenizedExample[]): TokenizedExample[][] {
  const o = ctx.options;
  const pools: Record<Task, TokenizedExample[]> = { A: [], B: [], C: [] };
  for (const example of domain) {
    const task = example.group as Task;
    if (!TASKS.includes(task))
      throw new DataError(`example ${example.key}: task ${JSON.stringify(example.group)} is not A, B or C`);
    pools[task].push(example);
  }
  const total = o.max_domain_rows > 0 ? Math.min(o.max_domain_rows, domain.length) : domain.length;
  const weights = { A: o.weight_task_a, B: o.weight_task_b, C: o.weight_task_c };
  const sum = weights.A + weights.B + weights.C;
  const a = roundHalfEven((total * weights.A) / sum);
  const b = roundHalfEven((total * weights.B) / sum);
  const quota: Record<string, number> = { A: a, B: b, C: total - a - b };
  quota.general = o.general_ratio > 0 ? roundHalfEven((total * o.general_ratio) / (1 - o.general_ratio)) : 0;

  const picked: TokenizedExample[] = [];
  const passes: Record<string, number> = {};
  const take = (name: string, pool: TokenizedExample[], priority: (key: string, pass: number) => number) => {
    const q = quota[name]!;
    if (q > 0 && pool.length === 0)
      throw new DataError(
        name === 'general'
          ? `${o.phase}: general_ratio is ${o.general_ratio} but there are no general instruction rows`
          : `${o.phase}: weight_task_${name.toLowerCase()} asks for ${q} Task ${name} rows but the input has none`,
      );
    passes[name] = pool.length ? Number((q / pool.length).toFixed(6)) : 0;
    picked.push(...fillByPasses(pool, q, priority, repeat));
  };
  for (const task of TASKS) take(task, pools[task], (key, pass) => ctx.keyed.hash(key, `sample ${pass}`));
  const generalSeed = o.general_seed === 'auto' ? ctx.pipeline.seed : o.general_seed;
  const generalRandom = new KeyedRandom(generalSeed, ctx.id);
  take('general', general, (key, pass) => generalRandom.hash(key, `general ${pass}`));

  const order = keyedOrder(picked, (key) => ctx.keyed.hash(key, 'shuffle'));
  const size = ctx.pipeline.batchSize;
  const batches: TokenizedExample[][] = [];
  for (let i = 0; i < order.length; i += size)
    batches.push(Array.from(order.subarray(i, i + size), (at) => picked[at]!));

  const poolSizes: Record<string, number> = { A: pools.A.length, B: pools.B.length, C: pools.C.length };
  for (const example of general)
    poolSizes[example.group ?? 'general'] = (poolSizes[example.group ?? 'general'] ?? 0) + 1;
  Object.assign(ctx.stats, { pools: poolSizes, quotas: quota, passes, rows: picked.length });
  report(ctx, quota, passes, picked.length);
  return batches;
}

function report(ctx: Context, quota: Record<string, number>, passes: Record<string, number>, rows: number) {
  const o = ctx.options;
  const n = (x: number) => x.toLocaleString('en-US');
  const share = (x: number) => `${((100 * x) / Math.max(rows, 1)).toFixed(1)}%`;
  ctx.progress.log(
    `${o.phase}: ${n(rows)} examples: ` +
      TASKS.map((t) => `Task ${t} ${n(quota[t]!)} (${share(quota[t]!)})`).join(', ') +
      `, general ${n(quota.general!)} (${share(quota.general!)})`,
  );
  const repeated = Object.entries(passes)
    .filter(([, p]) => p > 1)
    .map(([name, p]) => `${name === 'general' ? 'general rows' : `Task ${name}`} repeated ${p}x`);
  if (repeated.length)
    ctx.progress.warn(
      `${o.phase}: ${repeated.join(', ')} (a quota larger than its pool takes the pool in several passes)`,
    );
}
