import path from 'node:path';
import type { Progress } from '../../engine/progress.ts';
import type { AddedTokens } from '../../transforms/train/tokenizer-files.ts';
import type { TrainItem } from '../../transforms/train/types.ts';
import { batchFrame, FRAME, jsonFrame, PROTOCOL_VERSION } from './frames.ts';
import { helloConfig, type TrainerOptions } from './options.ts';
import { repoRoot } from './python.ts';
import { localRanks, rankEnv, worldSize, type RankItem, type Topology } from './ranks.ts';
import type { Checkpoint } from './resume.ts';
import type { TrainingDisplay } from './training-display.ts';
import { WorkerGroup } from './worker-group.ts';
import { WorkerProcess } from './worker-process.ts';

/** The first frame: the protocol version, the worker's config and the added tokens it must give ids to. */
export const helloFrame = (
  o: TrainerOptions,
  dir: string,
  pipeline: { seed: number; params: Readonly<Record<string, unknown>> },
  staging: string,
  added: AddedTokens['tokens'],
  checkpoint: Checkpoint | undefined,
) =>
  jsonFrame(FRAME.HELLO, {
    protocol_version: PROTOCOL_VERSION,
    config: {
      ...helloConfig(o, dir, pipeline.seed),
      // The whole run's settings (mix, eval, …): the snapshot's record, and what a resume is checked against.
      params: pipeline.params,
      staging_dir: staging,
      resume: checkpoint
        ? {
            path: checkpoint.path,
            phase: checkpoint.state.phase,
            phase_index: checkpoint.state.phase_index,
            step: checkpoint.state.step,
          }
        : null,
    },
    added_tokens: added,
  });

/** The frame one rank is sent for a phase plan, an eval micro-batch or its share of a step. */
export function rankFrame(routed: RankItem): Buffer {
  if ('step' in routed) {
    const { batch, rankTokens, padding } = routed.step;
    return batchFrame(FRAME.BATCH, batch, { rankTokens, padding });
  }
  const item: TrainItem = routed.item;
  if (item.kind === 'batch') return batchFrame(FRAME.BATCH, item.batch);
  if (item.kind === 'eval') return batchFrame(FRAME.EVAL, item.batch, { english: item.english === true });
  return jsonFrame(FRAME.PHASE, {
    name: item.name,
    total_steps: item.totalSteps,
    epochs: item.epochs,
    examples: { train: item.trainExamples, eval: item.evalExamples },
    sequences: { train: item.trainSequences, eval: item.evalSequences },
    rows: item.rows,
    ...(item.resumeStep === undefined ? {} : { resume_step: item.resumeStep }),
  });
}

/**
 * Starts this machine's workers, `python -m animind_trainer.worker` with trainer/ importable, one
 * per local rank with torch.distributed's environment. Rank 0's events drive the display; the
 * others add their throughput, and their warnings are shown with their rank.
 */
export function startWorkers(
  python: string,
  o: TrainerOptions,
  topology: Topology,
  display: TrainingDisplay,
  progress: Progress,
): WorkerGroup {
  // Shorter strings would mask ordinary text; no real token is that short.
  const secrets = [
    o.hf_token,
    process.env[o.hf_token_env] ?? '',
    o.wandb_api_key,
    process.env[o.wandb_api_key_env] ?? '',
  ].filter((s) => s.length >= 6);
  const several = worldSize(topology) > 1;
  const workers = new Map<number, WorkerProcess>();
  localRanks(topology).forEach((rank, local) => {
    const env = workerEnv(process.env, topology, local, repoRoot);
    const prefix = several && rank !== 0 ? `rank ${rank}: ` : '';
    const handlers = {
      onEvent: (event: Parameters<TrainingDisplay['onEvent']>[0]) =>
        rank === 0 ? display.onEvent(event) : display.onRankEvent(rank, event),
      onLog: (line: string) => line.trim() && progress.log(`worker: ${prefix}${line}`),
    };
    workers.set(
      rank,
      new WorkerProcess(python, repoRoot, env, handlers, secrets, several ? `trainer rank ${rank}` : 'trainer worker'),
    );
  });
  return new WorkerGroup(workers);
}

/**
 * A worker's environment: the supervisor's, with torch.distributed's for its rank when there are
 * several (a lone worker started under torchrun or srun must not join their process group), and
 * PyTorch's CUDA allocator set to grow its segments in place unless the user set it: padding-free
 * micro-batches and eval batches differ in length, and fixed-size segments fragment into gigabytes
 * of unusable holes.
 */
export function workerEnv(
  inherited: NodeJS.ProcessEnv,
  topology: Topology,
  local: number,
  repoRoot: string,
): NodeJS.ProcessEnv {
  const env = { ...inherited };
  for (const name of Object.keys(rankEnv(topology, 0))) delete env[name];
  return {
    PYTORCH_CUDA_ALLOC_CONF: 'expandable_segments:True',
    ...env,
    ...(worldSize(topology) > 1 ? rankEnv(topology, local) : {}),
    PYTHONPATH: [path.join(repoRoot, 'trainer'), inherited.PYTHONPATH].filter(Boolean).join(path.delimiter),
    PYTHONUNBUFFERED: '1',
  };
}
