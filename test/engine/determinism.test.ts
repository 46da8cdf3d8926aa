import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createReporter } from '../../engine/progress.ts';
import { runPlan } from '../../engine/runtime.ts';
import { loadTestPlan } from '../helpers/plan.ts';
import { hash53, KeyedRandom } from '../../engine/random.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const quiet = createReporter({ mode: 'quiet', format: 'text' });

async function relay(input: string, batchSize: number, chunk: number): Promise<string> {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'animind-det-')), 'out.jsonl');
  const plan = await loadTestPlan(path.join(here, 'pipelines/relay.yaml'), {
    in: input,
    out,
    batch_size: batchSize,
    chunk,
  });
  await runPlan(plan, { reporter: quiet });
  return readFileSync(out, 'utf8');
}

test('output bytes do not depend on batch size or read buffer size', async () => {
  const input = path.join(mkdtempSync(path.join(tmpdir(), 'animind-in-')), 'in.jsonl');
  writeFileSync(
    input,
    Array.from({ length: 3000 }, (_, n) => JSON.stringify({ n, key: `user-${n}` })).join('\n') + '\n',
  );
  const reference = await relay(input, 1024, 1 << 20);
  assert.equal(reference.split('\n').length, 3001);
  for (const [batch, chunk] of [
    [1, 7],
    [7, 64],
    [4096, 1 << 16],
  ] as const)
    assert.equal(await relay(input, batch, chunk), reference, `batch ${batch}, chunk ${chunk}`);
});

test('keyed draws depend on seed, node and key only', () => {
  const a = new KeyedRandom(42, 'mask');
  assert.equal(a.uniform('user-1'), new KeyedRandom(42, 'mask').uniform('user-1'));
  assert.notEqual(a.uniform('user-1'), new KeyedRandom(43, 'mask').uniform('user-1'));
  assert.notEqual(a.uniform('user-1'), new KeyedRandom(42, 'other').uniform('user-1'));
  assert.notEqual(a.uniform('user-1', 'pass-1'), a.uniform('user-1', 'pass-2'));
  // A keyed hash is hash53 of seed, node, purpose and key joined by NULs, whichever way it is computed.
  assert.equal(a.hash('user-1', 'pass-1'), hash53('42\u0000mask\u0000pass-1\u0000user-1'));
  assert.equal(a.hash(7), hash53('42\u0000mask\u0000\u00007'));
  const draws = Array.from({ length: 20000 }, (_, i) => a.int(`k${i}`, 10));
  for (let bucket = 0; bucket < 10; bucket++) {
    const share = draws.filter((d) => d === bucket).length / draws.length;
    assert.ok(Math.abs(share - 0.1) < 0.01, `bucket ${bucket} has share ${share}`);
  }
});
