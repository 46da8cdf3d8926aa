import { strict as assert } from 'node:assert';
import path from 'node:path';
import { test } from 'node:test';
import { workerEnv } from '../../sinks/trainer/launch.ts';
import { topology } from '../../sinks/trainer/ranks.ts';

const one = topology({
  nproc_per_node: 1,
  nnodes: 1,
  node_rank: 0,
  master_addr: '127.0.0.1',
  master_port: 29500,
  device: 'cpu',
  gradient_accumulation_steps: 16,
});

test("a worker's CUDA allocator grows its segments in place, against fragmentation, unless the user set it", () => {
  assert.equal(workerEnv({}, one, 0, '/repo').PYTORCH_CUDA_ALLOC_CONF, 'expandable_segments:True');
  const own = workerEnv({ PYTORCH_CUDA_ALLOC_CONF: 'max_split_size_mb:512' }, one, 0, '/repo');
  assert.equal(own.PYTORCH_CUDA_ALLOC_CONF, 'max_split_size_mb:512');
});

test("a lone worker drops an inherited torchrun environment and imports the trainer's package", () => {
  const env = workerEnv({ RANK: '3', WORLD_SIZE: '8', PYTHONPATH: '/site' }, one, 0, '/repo');
  assert.equal(env.RANK, undefined);
  assert.equal(env.WORLD_SIZE, undefined);
  assert.equal(env.PYTHONPATH, [path.join('/repo', 'trainer'), '/site'].join(path.delimiter));
});
