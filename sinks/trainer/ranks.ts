import { spawnSync } from 'node:child_process';
import { ConfigError, DataError } from '../../engine/errors.ts';
import type { MicroBatch, TrainItem } from '../../transforms/train/types.ts';

/** Where this machine's workers sit among all ranks (torchrun's terms). */
export interface Topology {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
}

export const worldSize = (t: Topology) => t.nprocPerNode * t.nnodes;

/** The global ranks of this machine's workers, in local-rank order. */
export const localRanks = (t: Topology) =>
  Array.from({ length: t.nprocPerNode }, (_, local) => t.nodeRank * t.nprocPerNode + local);

/** The standard torch.distributed environment of one worker. */
export function rankEnv(t: Topology, localRank: number): Record<string, string> {
  return {
    RANK: String(t.nodeRank * t.nprocPerNode + localRank),
    LOCAL_RANK: String(localRank),
    WORLD_SIZE: String(worldSize(t)),
    LOCAL_WORLD_SIZE: String(t.nprocPerNode),
    GROUP_RANK: String(t.nodeRank),
    MASTER_ADDR: t.masterAddr,
    MASTER_PORT: String(t.masterPort),
  };
}

/**
 * GPUs this process may use, for `nproc_per_node = auto`: CUDA_VISIBLE_DEVICES's entries when it is
 * set, else nvidia-smi's list; 1 (one worker) on a machine without them or when the device is the CPU
 * or one named GPU.
 */
export function visibleGpus(device: string, env: NodeJS.ProcessEnv = process.env): number {
  if (device === 'cpu' || device.startsWith('cuda:')) return 1;
  const listed = env.CUDA_VISIBLE_DEVICES;
  if (listed !== undefined) return Math.max(1, listed.split(',').filter((d) => d.trim() && d.trim() !== '-1').length);
  const smi = spawnSync('nvidia-smi', ['--list-gpus'], { encoding: 'utf8', timeout: 10_000 });
  if (smi.status !== 0) return 1;
  return Math.max(1, smi.stdout.split('\n').filter((line) => line.startsWith('GPU ')).length);
}

/** The topology the options ask for, checked: one line naming the key when it cannot work. */
export function topology(
  o: {
    nproc_per_node: number | 'auto';
    nnodes: number;
    node_rank: number;
    master_addr: string;
    master_port: number;
    device: string;
    gradient_accumulation_steps: number;
  },
  env: NodeJS.ProcessEnv = process.env,
): Topology {
  const nprocPerNode = o.nproc_per_node === 'auto' ? visibleGpus(o.device, env) : o.nproc_per_node;
  if (o.node_rank >= o.nnodes)
    throw new ConfigError(`node_rank ${o.node_rank} is not below nnodes ${o.nnodes}`, { key: 'node_rank' });
  if (nprocPerNode > 1 && o.device.startsWith('cuda:'))
    throw new ConfigError(`device ${o.device} names one GPU, but nproc_per_node is ${nprocPerNode}`, {
      key: 'device',
    });
  const t = {
    nprocPerNode,
    nnodes: o.nnodes,
    nodeRank: o.node_rank,
    masterAddr: o.master_addr,
    masterPort: o.master_port,
  };
  if (o.gradient_accumulation_steps % worldSize(t) !== 0)
    throw new ConfigError(
      `gradient_accumulation_steps ${o.gradient_accumulation_steps} must be a multiple of the ${worldSize(t)} ` +
        'ranks, so every rank takes the same share of each optimizer step',
      { key: 'gradient_accumulation_steps' },
    );
  return t;
}

/** A micro-batch as one rank sees it: its share of the step's completion tokens travels beside the global count. */
export interface RankBatch {
  batch: MicroBatch;
  /** Completion tokens in this rank's micro-batches of the step. */
  rankTokens: number;
  /** Holds no tokens: keeps a rank with nothing left in the step in step with the others. */
  padding: boolean;
}

/** What one rank is sent: the item as it is (PHASE, EVAL, the end), or its share of a step. */
export type RankItem = { rank: number; item: TrainItem } | { rank: number; step: RankBatch };

/**
 * Deals each optimizer step's micro-batches to the ranks: micro-batch m to rank m mod world, so
 * rank r's k-th is the step's (k × world + r)-th, the order the worker keys its dropout on. Every
 * rank ends the step on its own last micro-batch; a rank left without one gets a padding
 * micro-batch, so all of them meet at the step's gradient all-reduce. Phase plans go to every rank,
 * eval batches to rank 0 (which alone evaluates and writes).
 */
export class StepRouter {
  private pending: MicroBatch[] = [];

  constructor(
    private readonly world: number,
    private readonly ranks: readonly number[],
  ) {}

  route(item: TrainItem): RankItem[] {
    if (item.kind === 'batch') {
      this.pending.push(item.batch);
      return item.batch.endsStep ? this.deal() : [];
    }
    if (this.pending.length) throw new DataError('a phase plan or eval batch arrived inside an optimizer step');
    if (item.kind === 'eval') return this.ranks.includes(0) ? [{ rank: 0, item }] : [];
    return this.ranks.map((rank) => ({ rank, item }));
  }

  private deal(): RankItem[] {
    const step = this.pending;
    this.pending = [];
    const out: RankItem[] = [];
    for (const rank of this.ranks) {
      const mine = step.filter((_, m) => m % this.world === rank);
      const rankTokens = mine.reduce((n, b) => n + completionTokens(b), 0);
      if (!mine.length) mine.push(paddingBatch(step[0]!));
      mine.forEach((batch, k) =>
        out.push({
          rank,
          step: { batch: { ...batch, endsStep: k === mine.length - 1 }, rankTokens, padding: batch.rows === 0 },
        }),
      );
    }
    return out;
  }
}

const completionTokens = (b: MicroBatch) => b.labels.reduce((n, label) => n + (label === -100 ? 0 : 1), 0);

/** A micro-batch of no rows: the worker runs no forward for it, only the step's synchronisation. */
const paddingBatch = (like: MicroBatch): MicroBatch => ({
  rows: 0,
  seqLen: like.seqLen,
  inputIds: new Int32Array(0),
  labels: new Int32Array(0),
  positionIds: new Int32Array(0),
  endsStep: true,
  stepCompletionTokens: like.stepCompletionTokens,
});
