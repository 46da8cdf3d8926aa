import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { rankEnv, StepRouter, topology, visibleGpus, type RankItem } from '../../sinks/trainer/ranks.ts';
import type { MicroBatch, TrainItem } from '../../transforms/train/types.ts';

/** A one-row micro-batch whose labels score `tokens` positions. */
const micro = (tokens: number, endsStep = false): MicroBatch => ({
  rows: 1,
  seqLen: 8,
  inputIds: new Int32Array(8).fill(tokens),
  labels: Int32Array.from({ length: 8 }, (_, i) => (i < tokens ? 1 : -100)),
  positionIds: Int32Array.from({ length: 8 }, (_, i) => i),
  endsStep,
  stepCompletionTokens: 0,
});
const step = (n: number, tokens: number[]): TrainItem[] =>
  tokens.map((t, i) => ({ kind: 'batch', step: n, batch: micro(t, i === tokens.length - 1) }));
/** rank:first id (or pad), ! on the step's last, /the rank's completion tokens in the step. */
const summary = (routed: RankItem[]) =>
  routed.map((r) => {
    if (!('step' in r)) return `${r.rank}:${r.item.kind}`;
    const { batch, padding, rankTokens } = r.step;
    return `${r.rank}:${padding ? 'pad' : batch.inputIds[0]}${batch.endsStep ? '!' : ''}/${rankTokens}`;
  });

test("a step's micro-batches are dealt round-robin, each rank ending the step on its own last one", () => {
  const router = new StepRouter(2, [0, 1]);
  const routed = step(1, [3, 4, 5, 6]).flatMap((item) => router.route(item));
  // Micro-batch m goes to rank m mod 2; each rank's share of the completion tokens travels with it.
  assert.deepEqual(summary(routed), ['0:3/8', '0:5!/8', '1:4/10', '1:6!/10']);
});

test('a rank with nothing left in a short step gets a padding micro-batch; evals go to rank 0 only', () => {
  const router = new StepRouter(2, [0, 1]);
  assert.deepEqual(summary(step(7, [3]).flatMap((item) => router.route(item))), ['0:3!/3', '1:pad!/0']);
  const evalItem: TrainItem = { kind: 'eval', batch: micro(2) };
  assert.deepEqual(summary(router.route(evalItem)), ['0:eval']);
  // On the second machine of two (ranks 2 and 3 of 4), rank 0's evals are not its to send.
  const second = new StepRouter(4, [2, 3]);
  assert.deepEqual(second.route(evalItem), []);
  assert.deepEqual(summary(step(1, [1, 2, 3, 4]).flatMap((item) => second.route(item))), ['2:3!/3', '3:4!/4']);
});

test('the torch.distributed environment of each rank, and the checks on the topology', () => {
  const t = topology({
    nproc_per_node: 2,
    nnodes: 2,
    node_rank: 1,
    master_addr: '10.0.0.1',
    master_port: 29500,
    device: 'auto',
    gradient_accumulation_steps: 16,
  });
  assert.deepEqual(rankEnv(t, 1), {
    RANK: '3',
    LOCAL_RANK: '1',
    WORLD_SIZE: '4',
    LOCAL_WORLD_SIZE: '2',
    GROUP_RANK: '1',
    MASTER_ADDR: '10.0.0.1',
    MASTER_PORT: '29500',
  });
  const base = {
    nnodes: 1,
    node_rank: 0,
    master_addr: 'x',
    master_port: 1,
    device: 'auto',
    gradient_accumulation_steps: 16,
  };
  assert.throws(
    () => topology({ ...base, nproc_per_node: 3 }),
    /gradient_accumulation_steps 16 must be a multiple of the 3 ranks/,
  );
  assert.throws(() => topology({ ...base, nproc_per_node: 1, node_rank: 1 }), /node_rank 1 is not below nnodes 1/);
  assert.equal(visibleGpus('auto', { CUDA_VISIBLE_DEVICES: '0,2,3' }), 3);
  assert.equal(visibleGpus('cpu', { CUDA_VISIBLE_DEVICES: '0,1' }), 1);
  assert.equal(visibleGpus('auto', { CUDA_VISIBLE_DEVICES: '' }), 1);
});
