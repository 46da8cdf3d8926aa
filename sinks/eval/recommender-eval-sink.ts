import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { DataError } from '../../engine/errors.ts';
import { defineSink, port, type NodeContext } from '../../engine/node.ts';
import { inputPath, outputFolder } from '../../engine/options.ts';
import type { Counter } from '../../engine/progress.ts';
import { findPython } from '../trainer/python.ts';
import { runPythonJob, type JobEvent } from './python-job.ts';

const int = () => z.int();

const options = z.strictObject({
  run_dir: z
    .string()
    .default('')
    .describe('the train run folder (tokenizer/, final_model/, train_run_summary.json); empty: baselines only'),
  model_name: z.string().min(1).default('final_model').describe('the model folder in run_dir to evaluate'),
  semantic_ids: inputPath('semantic_ids.jsonl: every valid ID (the decoding trie) and the titles'),
  train_histories: inputPath("the training users' watch sequences (llm_prep_train_histories.jsonl), for the baselines"),
  out_dir: outputFolder('where eval_metrics.json and eval_report.html go'),
  top_k: int().positive().default(20).describe('anime returned per user'),
  k_values: z.array(int().positive()).min(1).default([1, 5, 10, 20]).describe('cut-offs of Recall@K and NDCG@K'),
  beam_size: z
    .union([int().positive(), z.literal('auto')])
    .default('auto')
    .describe('beams; auto: top_k'),
  exclude_history: z
    .boolean()
    .default(true)
    .describe("leave the user's history out of every ranking, as recommender evaluations usually do"),
  batch_size: int().positive().default(8).describe('users per generation batch'),
  device: z
    .string()
    .regex(/^(auto|cpu|cuda(:\d+)?)$/)
    .default('auto'),
  precision: z.enum(['auto', 'fp32', 'bf16']).default('auto'),
  max_users: int().nonnegative().default(0).describe('evaluate at most this many held-out users; 0: all'),
  sasrec: z.boolean().default(true).describe('train and score the SASRec baseline'),
  sasrec_epochs: int().positive().default(20).describe("SASRec's training epochs"),
  python: z.string().default('').describe("the trainer's Python"),
});

type Options = z.output<typeof options>;

/** A held-out user as prep writes it (llm_prep_valid.jsonl, llm_prep_test.jsonl). */
interface HeldOutUser {
  user_id: number;
  [field: string]: unknown;
}

const evalStats = z.object({
  users: z.number(),
  recall_at_10: z.record(z.string(), z.number()).describe('Recall@10 by model and baseline'),
});

type Context = NodeContext<Options, typeof evalStats>;

const OUTPUTS = ['eval_metrics.json', 'eval_report.html'] as const;

/**
 * Evaluates a trained model and the baselines on the held-out users it receives: the worker
 * generates with beam search constrained to valid semantic IDs and scores every ranking with the
 * same metric code (trainer/animind_trainer/recommend/). Writes eval_metrics.json and a
 * self-contained eval_report.html, published only when the whole evaluation succeeds.
 */
export default defineSink({
  type: 'recommender-eval',
  kind: 'sink',
  description:
    'Recall/NDCG/MRR of the trained model (trie-constrained beam search) and of most-popular, ' +
    'item-kNN and SASRec on the same held-out users; writes eval_metrics.json and eval_report.html.',
  options,
  inputs: { in: port<HeldOutUser>() },
  stats: evalStats,
  async check(o) {
    try {
      await findPython(o.python);
      return [];
    } catch (error) {
      return [{ option: 'python', message: (error as Error).message }];
    }
  },
  async create(ctx, inputs) {
    const o = ctx.options;
    const python = await findPython(o.python);
    const work = mkdtempSync(path.join(tmpdir(), 'animind-eval-'));
    ctx.onClose(() => rmSync(work, { recursive: true, force: true }));
    const users = await inputs.ports.in.collect().toPromise(Promise);
    const heldout = path.join(work, 'heldout.jsonl');
    writeFileSync(
      heldout,
      users
        .flat()
        .map((u) => `${JSON.stringify(u)}\n`)
        .join(''),
    );
    if (!users.flat().length)
      throw new DataError('no held-out users to evaluate: prep wrote none (holdout fractions 0?)');
    const outputs = OUTPUTS.map((name) => ctx.output(path.join(o.out_dir, name)));
    const request = path.join(work, 'request.json');
    writeFileSync(request, JSON.stringify(evalRequest(o, heldout, path.join(work, 'out'), ctx.pipeline.seed)));
    const stages: Stages = new Map();
    await runPythonJob(
      python,
      'animind_trainer.recommend.evaluate',
      request,
      {
        onEvent: (event) => onEvent(ctx, stages, event),
        onLog: (line) => line.trim() && ctx.progress.log(`worker: ${line}`),
      },
      ctx.signal,
    );
    for (const { counter } of stages.values()) counter.done();
    OUTPUTS.forEach((name, i) => renameSync(path.join(work, 'out', name), outputs[i]!));
    summarise(ctx, readFileSync(outputs[0]!, 'utf8'));
  },
});

function evalRequest(o: Options, heldout: string, outDir: string, seed: number) {
  const run = o.run_dir && path.resolve(o.run_dir);
  return {
    model_dir: run || null,
    model_name: o.model_name,
    semantic_ids_path: path.resolve(o.semantic_ids),
    heldout_path: heldout,
    train_histories_path: path.resolve(o.train_histories),
    train_summary_path: run ? path.join(run, 'train_run_summary.json') : null,
    out_dir: outDir,
    k_values: o.k_values,
    top_k: o.top_k,
    beam_size: o.beam_size === 'auto' ? o.top_k : o.beam_size,
    exclude_history: o.exclude_history,
    batch_size: o.batch_size,
    device: o.device,
    precision: o.precision,
    max_users: o.max_users,
    seed,
    sasrec: { enabled: o.sasrec, epochs: o.sasrec_epochs },
  };
}

/** A stage's counter and the users it has counted, as the worker's cumulative progress events say. */
type Stages = Map<string, { counter: Counter; counted: number }>;

function onEvent(ctx: Context, stages: Stages, event: JobEvent): void {
  if (event.event === 'log')
    return event.level === 'warning'
      ? ctx.progress.warn(String(event.message))
      : ctx.progress.log(String(event.message));
  if (event.event !== 'progress') return;
  const name = String(event.stage);
  let stage = stages.get(name);
  if (!stage) {
    const unit = typeof event.unit === 'string' ? event.unit : 'users'; // SASRec's training counts epochs
    stage = { counter: ctx.progress.counter(name, { unit, total: Number(event.total) || undefined }), counted: 0 };
    stages.set(name, stage);
  }
  const done = Number(event.done);
  if (done > stage.counted) stage.counter.add(done - stage.counted);
  stage.counted = Math.max(stage.counted, done);
}

/** Recall@10 of every model in the log and the stats. */
function summarise(ctx: Context, metricsText: string): void {
  const metrics = JSON.parse(metricsText) as { users: number; models: Record<string, Record<string, unknown>> };
  const recall: Record<string, number> = {};
  for (const [name, m] of Object.entries(metrics.models)) {
    const value = (m.recall as Record<string, number> | undefined)?.['10'] ?? (m['recall@10'] as number | undefined);
    if (typeof value === 'number') recall[name] = value;
  }
  Object.assign(ctx.stats, { users: metrics.users, recall_at_10: recall });
  ctx.progress.log(
    `eval: ${metrics.users} held-out users; Recall@10 ` +
      Object.entries(recall)
        .map(([name, value]) => `${name} ${value.toFixed(4)}`)
        .join(', '),
  );
}
