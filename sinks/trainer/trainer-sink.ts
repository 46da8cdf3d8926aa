import path from 'node:path';
import { DataError } from '../../engine/errors.ts';
import { z } from 'zod';
import { defineSink, port, type Batch, type OptionProblem } from '../../engine/node.ts';
import type { Progress } from '../../engine/progress.ts';
import { _, type Stream } from '../../engine/stream.ts';
import { loadTrainTokenizer } from '../../transforms/train/tokenizer.ts';
import { readAddedTokens, type AddedTokens } from '../../transforms/train/tokenizer-files.ts';
import { tokenizerDir } from '../../transforms/train/tokenizer-options.ts';
import type { TrainItem } from '../../transforms/train/types.ts';
import { batchFrame, endFrame, FRAME, jsonFrame, PROTOCOL_VERSION } from './frames.ts';
import { checkHandshake } from './handshake.ts';
import { helloConfig, runDir, trainerOptions, type TrainerOptions } from './options.ts';
import { findPython, repoRoot } from './python.ts';
import { RunFolder } from './run-folder.ts';
import { TrainingDisplay } from './training-display.ts';
import { WorkerProcess } from './worker-process.ts';

/** The next batch of a stream, or undefined at its end; pulling one at a time is the backpressure. */
const pull = <T>(input: Stream<Batch<T>>) =>
  new Promise<Batch<T> | undefined>((resolve, reject) =>
    input.pull((error, batch) => (error ? reject(error) : resolve(_.isNil(batch) ? undefined : batch))),
  );

/** The first frame: the protocol version, the worker's config and the added tokens it must give ids to. */
const helloFrame = (
  o: TrainerOptions,
  dir: string,
  pipeline: { seed: number; params: Readonly<Record<string, unknown>> },
  staging: string,
  added: AddedTokens['tokens'],
) =>
  jsonFrame(FRAME.HELLO, {
    protocol_version: PROTOCOL_VERSION,
    // `params`: the whole run's settings (mix, eval, …) for the config snapshot; the worker acts on the rest.
    config: { ...helloConfig(o, dir, pipeline.seed), params: pipeline.params, staging_dir: staging },
    added_tokens: added,
  });

/** Starts `python -m animind_trainer.worker` with trainer/ importable; its events drive the display. */
function startWorker(python: string, o: TrainerOptions, display: TrainingDisplay, progress: Progress): WorkerProcess {
  const env = {
    ...process.env,
    PYTHONPATH: [path.join(repoRoot, 'trainer'), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
    PYTHONUNBUFFERED: '1',
  };
  // Shorter strings would mask ordinary text; no real token is that short.
  const secrets = [
    o.hf_token,
    process.env[o.hf_token_env] ?? '',
    o.wandb_api_key,
    process.env[o.wandb_api_key_env] ?? '',
  ].filter((s) => s.length >= 6);
  return new WorkerProcess(
    python,
    repoRoot,
    env,
    {
      onEvent: (event) => display.onEvent(event),
      onLog: (line) => line.trim() && progress.log(`worker: ${line}`),
    },
    secrets,
  );
}

const trainerStats = z.object({
  phase: z.string(),
  total_steps: z.number(),
  steps: z.number(),
  last_loss: z.number(),
  tokens_per_s: z.number(),
  evals: z.array(z.object({ phase: z.unknown(), step: z.unknown(), eval_loss: z.unknown() })),
  english_perplexity: z.unknown(),
  runtime: z.record(z.string(), z.unknown()),
  frames: z.number(),
  out_dir: z.string(),
});

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
    // The worker writes into a staging folder; the run folder changes only when training has finished.
    const folder = new RunFolder(runDir(o));
    folder.create();
    ctx.onClose(() => folder.discard()); // registered first, so it runs after the worker has stopped

    const display = new TrainingDisplay(ctx.progress, ctx.stats, o.log_every_steps);
    const worker = startWorker(python, o, display, ctx.progress);
    ctx.onClose(() => worker.stop(o.stop_grace_s * 1000));

    // The worker loads the model while the upstream nodes tokenize and pack (the first item, the
    // phase plan, comes only once every example is counted): the two slow starts overlap.
    const ready = worker.waitFor('ready');
    const first = pull(input);
    first.catch(() => {});
    await worker.send(helloFrame(o, dir, ctx.pipeline, folder.staging, added.tokens));
    await checkHandshake(await ready, tokenizer, added.tokens);

    let phases = 0;
    let frames = 0;
    for (let batch = await worker.whileRunning(first); batch; batch = await worker.whileRunning(pull(input))) {
      for (const item of batch) {
        if (item.kind === 'phase') {
          if (phases++) display.finishPhase();
          display.startPhase(item.name, item.totalSteps);
          await worker.send(
            jsonFrame(FRAME.PHASE, {
              name: item.name,
              total_steps: item.totalSteps,
              epochs: item.epochs,
              examples: { train: item.trainExamples, eval: item.evalExamples },
              sequences: { train: item.trainSequences, eval: item.evalSequences },
              rows: item.rows,
            }),
          );
        } else {
          if (!phases)
            throw new DataError("the trainer's input must start with a phase plan: feed it from a pack-steps node");
          await worker.send(
            item.kind === 'batch'
              ? batchFrame(FRAME.BATCH, item.batch)
              : batchFrame(FRAME.EVAL, item.batch, item.english === true),
          );
        }
        frames++;
      }
    }
    if (!phases) throw new DataError('no phase plan reached the trainer: its input was empty');
    await worker.send(endFrame());
    await worker.finish();
    folder.publish();
    display.finishPhase();
    ctx.stats.frames = frames;
    ctx.stats.out_dir = folder.dir;
    ctx.progress.log(
      `trained model in ${path.join(folder.dir, 'final_model')}; tokenizer, summary and config snapshot beside it`,
    );
  },
});
