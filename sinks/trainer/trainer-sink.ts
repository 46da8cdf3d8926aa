import { rmSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, DataError } from '../../engine/errors.ts';
import { defineSink, port, type Batch, type NodeContext, type OptionProblem } from '../../engine/node.ts';
import { _, type Stream } from '../../engine/stream.ts';
import { loadTrainTokenizer } from '../../transforms/train/tokenizer.ts';
import { readAddedTokens } from '../../transforms/train/tokenizer-files.ts';
import { tokenizerDir } from '../../transforms/train/tokenizer-options.ts';
import type { TrainItem } from '../../transforms/train/types.ts';
import { endFrame } from './frames.ts';
import { checkHandshake } from './handshake.ts';
import { helloFrame, rankFrame, startWorkers } from './launch.ts';
import { runDir, trainerOptions, type TrainerOptions } from './options.ts';
import { findPython } from './python.ts';
import { StepRouter, topology, worldSize } from './ranks.ts';
import { adoptPhaseFolders, findCheckpoint, ResumeFilter, resumeProblem, type Checkpoint } from './resume.ts';
import { RunFolder } from './run-folder.ts';
import { TrainingDisplay } from './training-display.ts';

/** The next batch of a stream, or undefined at its end; pulling one at a time is the backpressure. */
const pull = <T>(input: Stream<Batch<T>>) =>
  new Promise<Batch<T> | undefined>((resolve, reject) =>
    input.pull((error, batch) => (error ? reject(error) : resolve(_.isNil(batch) ? undefined : batch))),
  );

const trainerStats = z.object({
  phase: z.string(),
  total_steps: z.number(),
  steps: z.number(),
  last_loss: z.number(),
  tokens_per_s: z.number().describe('all ranks together'),
  rank_tokens_per_s: z.record(z.string(), z.number()).describe('each rank, with several'),
  evals: z.array(z.object({ phase: z.unknown(), step: z.unknown(), eval_loss: z.unknown() })),
  english_perplexity: z.unknown(),
  runtime: z.record(z.string(), z.unknown()),
  frames: z.number(),
  out_dir: z.string(),
});

type Context = NodeContext<TrainerOptions, typeof trainerStats>;

/**
 * The run folder, its staging folder made; when resuming, the checkpoint (checked against this
 * run's settings) and the interrupted run's phase folders carried over.
 */
function openRunFolder(ctx: Context): { folder: RunFolder; checkpoint: Checkpoint | undefined } {
  const o = ctx.options;
  const checkpoint = findCheckpoint(o.resume_from, runDir(o));
  const refused = checkpoint && resumeProblem(checkpoint, ctx.pipeline.params);
  if (refused) throw new ConfigError(refused);
  // The worker writes into a staging folder; the run folder changes only when training has finished.
  const folder = new RunFolder(runDir(o));
  folder.create();
  ctx.onClose(() => folder.discard()); // registered first, so it runs after the worker has stopped
  if (checkpoint) {
    adoptPhaseFolders(checkpoint.root, folder.staging);
    ctx.progress.log(`resuming from ${checkpoint.path}: ${checkpoint.state.phase} after step ${checkpoint.state.step}`);
  } else if (o.resume_from === 'latest') ctx.progress.log('resume_from = latest: no checkpoint yet; starting anew');
  return { folder, checkpoint };
}

/**
 * Supervises the Python trainer: starts it, checks at the handshake that both sides assign the
 * same token ids, streams the phase plan and micro-batches as frames (a frame or so ahead of the
 * GPU), shows its progress, and stops it in order on failure or Ctrl-C.
 */
export default defineSink({
  type: 'trainer-sink',
  kind: 'sink',
  description:
    'Streams packed batches to the Python/PyTorch trainer worker and supervises it (progress, errors, clean stop).',
  options: trainerOptions,
  inputs: { in: port<TrainItem>() },
  stats: trainerStats,
  // SIGTERM/SIGUSR1: the worker finishes its step, checkpoints and the run exits 75 (resume_from = "latest").
  stoppable: true,
  async check(options) {
    const problems: OptionProblem[] = [];
    // The worker would refuse a vocabulary of the wrong size only at its handshake, after the model loads.
    try {
      readAddedTokens(options.semantic_vocab);
    } catch (error) {
      problems.push({ option: 'semantic_vocab', message: (error as Error).message });
    }
    try {
      await findPython(options.python);
    } catch (error) {
      problems.push({ option: 'python', message: (error as Error).message });
    }
    return problems;
  },
  async create(ctx, inputs) {
    const o = ctx.options;
    const input = inputs.ports.in;
    const python = await findPython(o.python);
    const dir = tokenizerDir(o);
    const added = readAddedTokens(o.semantic_vocab);
    const tokenizer = await loadTrainTokenizer(dir, added);
    const ranks = topology(o);
    const { folder, checkpoint } = openRunFolder(ctx);
    const resume = checkpoint && new ResumeFilter(checkpoint.state);

    const display = new TrainingDisplay(ctx.progress, ctx.stats, o.log_every_steps, worldSize(ranks));
    const workers = startWorkers(python, o, ranks, display, ctx.progress);
    ctx.onClose(() => workers.stop(o.stop_grace_s * 1000));
    ctx.stopRequested.addEventListener('abort', () => {
      ctx.progress.warn('stop requested: the trainer finishes its optimizer step and writes a checkpoint');
      workers.preempt();
    });
    const router = new StepRouter(worldSize(ranks), workers.ranks);

    // The workers load the model while the upstream nodes tokenize and pack (the first item, the
    // phase plan, comes only once every example is counted): the two slow starts overlap.
    const ready = workers.waitForAll('ready');
    const first = pull(input);
    first.catch(() => {});
    await workers.sendAll(helloFrame(o, dir, ctx.pipeline, folder.staging, added.tokens, checkpoint));
    const readies = await ready;
    const rank0 = workers.ranks.indexOf(0);
    if (rank0 >= 0) await checkHandshake(readies[rank0]!, tokenizer, added.tokens);

    let phases = 0;
    let frames = 0;
    for (let batch = await workers.whileRunning(first); batch; batch = await workers.whileRunning(pull(input))) {
      for (const next of batch) {
        const item = resume ? resume.pass(next) : next;
        if (!item) continue;
        if (item.kind === 'phase') {
          if (phases++) display.finishPhase();
          display.startPhase(item.name, item.totalSteps);
        } else if (!phases)
          throw new DataError("the trainer's input must start with a phase plan: feed it from a pack-steps node");
        for (const routed of router.route(item)) await workers.sendTo(routed.rank, rankFrame(routed));
        frames++;
      }
    }
    if (!phases) throw new DataError('no phase plan reached the trainer: its input was empty');
    await workers.sendAll(endFrame());
    await workers.finish();
    display.finishPhase();
    ctx.stats.frames = frames;
    // Rank 0 writes every output; a machine without it has nothing to publish.
    if (rank0 < 0) return;
    folder.publish();
    // The interrupted run it resumed from is now part of this one (its checkpoints were linked in).
    if (checkpoint && checkpoint.root !== folder.dir) rmSync(checkpoint.root, { recursive: true, force: true });
    ctx.stats.out_dir = folder.dir;
    ctx.progress.log(
      `trained model in ${path.join(folder.dir, 'final_model')}; tokenizer, summary and config snapshot beside it`,
    );
  },
});
